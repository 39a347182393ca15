//! Tenants: an organization, its workspaces and API keys, written straight into the
//! app's database (what an operator's `filegate admin` would do).

use filegate_db::Pool;
use filegate_domain::Limits;
use uuid::Uuid;

/// An organization with one workspace and a key limited to nothing (org-wide) whose
/// default is that workspace.
#[derive(Debug, Clone)]
pub struct Tenant {
    pub org: Uuid,
    pub workspace: Uuid,
    pub key: String,
    pub key_id: Uuid,
}

/// A new organization with one workspace of `limits` and an org-wide key defaulting to it.
pub(crate) async fn create_tenant(pool: &Pool, limits: &Limits) -> Tenant {
    let org = filegate_db::orgs::create(pool, "test org")
        .await
        .expect("create org");
    let workspace = create_workspace(pool, org, limits).await;
    let (key, key_id) = create_key(pool, org, None, Some(workspace)).await;
    Tenant {
        org,
        workspace,
        key,
        key_id,
    }
}

/// A new workspace in `org`.
pub(crate) async fn create_workspace(pool: &Pool, org: Uuid, limits: &Limits) -> Uuid {
    filegate_db::workspaces::create(pool, org, "test", limits)
        .await
        .expect("create workspace")
        .id
}

/// A new key; returns the secret and the id.
pub(crate) async fn create_key(
    pool: &Pool,
    org: Uuid,
    scope: Option<Vec<Uuid>>,
    default: Option<Uuid>,
) -> (String, Uuid) {
    let minted = filegate::service::keys::mint().expect("randomness");
    filegate_db::keys::create(
        pool,
        &filegate_db::keys::NewKey {
            id: minted.id,
            organization_id: org,
            workspace_scope: scope,
            default_workspace_id: default,
            secret_sha256: minted.sha256,
        },
    )
    .await
    .expect("create key");
    (minted.secret, minted.id)
}
