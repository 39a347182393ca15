//! `filegate admin …`: organizations, workspaces and keys, for operators and scripts.
//! Every command prints one line of text, or one JSON object with `--json`.

use anyhow::{Context as _, bail};
use filegate_db::{Constraint, Pool, keys, orgs, workspaces};
use filegate_domain::Limits;
use serde_json::json;

use crate::service::keys::mint;
use crate::settings::{AdminArgs, AdminCommand, WebhookCommand};

/// Runs one admin command against the database.
///
/// # Errors
/// When the database is unreachable or the command's arguments do not hold
/// (unknown organization, workspace of another organization, …).
pub async fn run(args: AdminArgs) -> anyhow::Result<()> {
    let pool = filegate_db::connect(&args.database.pool()).context("database settings")?;
    let out = match args.command {
        AdminCommand::CreateOrg { name } => {
            if name.is_empty() || name.len() > 200 {
                bail!("organization name must be 1 to 200 bytes long");
            }
            let id = orgs::create(&pool, &name).await?;
            Output {
                text: id.to_string(),
                json: json!({ "id": id, "name": name }),
            }
        }
        AdminCommand::CreateWorkspace {
            org,
            name,
            limits,
            unique_names,
            rate_limit_per_second,
            rate_limit_burst,
        } => {
            if !orgs::exists(&pool, org).await? {
                bail!("no organization {org}");
            }
            let defaults = args.limits.limits();
            let limits = Limits {
                quota_bytes: limits.quota_bytes.unwrap_or(defaults.quota_bytes),
                max_file_bytes: limits.max_file_bytes.unwrap_or(defaults.max_file_bytes),
                allowed_types: if limits.allowed_types.is_empty() {
                    defaults.allowed_types
                } else {
                    limits.allowed_types
                },
                unique_names,
                max_files: limits.max_files.unwrap_or(defaults.max_files),
                max_pending_files: limits
                    .max_pending_files
                    .unwrap_or(defaults.max_pending_files),
            };
            let ws = workspaces::create(&pool, org, &name, &limits).await?;
            let rate_limit = rate_limit_per_second.zip(rate_limit_burst);
            if rate_limit.is_some() {
                workspaces::set_rate_limit(&pool, ws.id, rate_limit).await?;
            }
            let mut json = workspace_json(&ws);
            json["rate_limit"] =
                json!(rate_limit.map(|(r, b)| json!({ "per_second": r, "burst": b })));
            Output {
                text: ws.id.to_string(),
                json,
            }
        }
        AdminCommand::SetWorkspace {
            workspace,
            limits,
            unique_names,
        } => {
            let patch = workspaces::LimitsPatch {
                quota_bytes: limits.quota_bytes,
                max_file_bytes: limits.max_file_bytes,
                allowed_types: (!limits.allowed_types.is_empty()).then_some(limits.allowed_types),
                unique_names,
                max_files: limits.max_files,
                max_pending_files: limits.max_pending_files,
            };
            let ws = match workspaces::set_limits(&pool, workspace, &patch).await {
                Ok(ws) => ws,
                Err(e) if e.constraint() == Some(Constraint::WithinQuota) => {
                    bail!("the workspace already holds more than that quota")
                }
                Err(e) => return Err(e.into()),
            };
            let Some(ws) = ws else {
                bail!("no workspace {workspace}");
            };
            Output {
                text: ws.id.to_string(),
                json: workspace_json(&ws),
            }
        }
        AdminCommand::CreateKey {
            org,
            workspaces,
            default_workspace,
        } => create_key(&pool, org, workspaces, default_workspace).await?,
        AdminCommand::SetRateLimit {
            workspace,
            per_second,
            burst,
            clear,
        } => {
            let limit = if clear { None } else { per_second.zip(burst) };
            if !workspaces::set_rate_limit(&pool, workspace, limit).await? {
                bail!("no workspace {workspace}");
            }
            Output {
                text: limit.map_or_else(
                    || format!("cleared {workspace}"),
                    |(r, b)| format!("{workspace}: {r}/s, burst {b}"),
                ),
                json: json!({ "workspace": workspace, "rate_limit": limit.map(|(r, b)| json!({ "per_second": r, "burst": b })) }),
            }
        }
        AdminCommand::Webhook { command } => webhook(&pool, command).await?,
        AdminCommand::Reprocess { workspace } => {
            let queued = filegate_db::processing::requeue(&pool, workspace).await?;
            Output {
                text: format!("queued {queued} files for processing"),
                json: json!({ "workspace": workspace, "queued": queued }),
            }
        }
        AdminCommand::RevokeKey { id } => {
            if !keys::revoke(&pool, id).await? {
                bail!("no API key {id}");
            }
            Output {
                text: format!("revoked {id}"),
                json: json!({ "id": id, "revoked": true }),
            }
        }
    };
    print(&out, args.json);
    Ok(())
}

struct Output {
    text: String,
    json: serde_json::Value,
}

#[allow(clippy::print_stdout)]
fn print(out: &Output, as_json: bool) {
    if as_json {
        println!("{}", out.json);
    } else {
        println!("{}", out.text);
    }
}

async fn create_key(
    pool: &Pool,
    org: uuid::Uuid,
    scope: Vec<uuid::Uuid>,
    default_workspace: Option<uuid::Uuid>,
) -> anyhow::Result<Output> {
    if !orgs::exists(pool, org).await? {
        bail!("no organization {org}");
    }
    for ws in scope.iter().chain(default_workspace.iter()) {
        let row = workspaces::get(pool, *ws).await?;
        if row.is_none_or(|w| w.organization_id != org) {
            bail!("workspace {ws} does not belong to organization {org}");
        }
    }
    if let Some(d) = default_workspace
        && !scope.is_empty()
        && !scope.contains(&d)
    {
        bail!("the default workspace {d} is outside the key's --workspace scope");
    }
    // A key limited to one workspace defaults to it.
    let default_workspace = default_workspace.or(match scope.as_slice() {
        [only] => Some(*only),
        _ => None,
    });
    let minted = mint().context("no system randomness")?;
    let scope = if scope.is_empty() { None } else { Some(scope) };
    keys::create(
        pool,
        &keys::NewKey {
            id: minted.id,
            organization_id: org,
            workspace_scope: scope.clone(),
            default_workspace_id: default_workspace,
            secret_sha256: minted.sha256,
        },
    )
    .await?;
    Ok(Output {
        text: minted.secret.clone(),
        json: json!({
            "id": minted.id, "organization_id": org, "workspaces": scope,
            "default_workspace": default_workspace, "key": minted.secret,
        }),
    })
}

/// A workspace's settings as the admin commands print them.
fn workspace_json(ws: &workspaces::Workspace) -> serde_json::Value {
    json!({
        "id": ws.id, "organization_id": ws.organization_id, "name": ws.name,
        "quota_bytes": ws.limits.quota_bytes, "max_file_bytes": ws.limits.max_file_bytes,
        "allowed_content_types": ws.limits.allowed_types.iter().map(|t| t.mime()).collect::<Vec<_>>(),
        "unique_names": ws.limits.unique_names,
        "max_files": ws.limits.max_files, "max_pending_files": ws.limits.max_pending_files,
    })
}

/// `filegate admin webhook …`.
async fn webhook(pool: &Pool, command: WebhookCommand) -> anyhow::Result<Output> {
    use filegate_db::webhooks as db;
    let endpoint_json = |e: &db::Endpoint| {
        json!({
            "id": e.id, "workspace_id": e.workspace_id, "url": e.url, "event_types": e.event_types,
            "enabled": e.enabled, "disabled_reason": e.disabled_reason,
        })
    };
    Ok(match command {
        WebhookCommand::Create {
            workspace,
            url,
            events,
            disabled,
            import_allowed_hosts,
        } => {
            if workspaces::get(pool, workspace).await?.is_none() {
                bail!("no workspace {workspace}");
            }
            let policy = crate::service::imports::guard::Policy {
                allowed: import_allowed_hosts,
            };
            let url = policy
                .check(&url, crate::service::webhooks::URL)
                .await
                .map_err(|r| anyhow::anyhow!("the URL is refused: {r}"))?;
            // Repeated `--event`s; none: every type.
            let types =
                crate::service::webhooks::event_type_names((!events.is_empty()).then_some(events));
            let secret = crate::service::webhooks::new_secret().context("no system randomness")?;
            let created = db::create(
                pool,
                &db::NewEndpoint {
                    id: uuid::Uuid::now_v7(),
                    workspace_id: workspace,
                    url: url.as_str(),
                    event_types: &types,
                    enabled: !disabled,
                    secret: &secret,
                },
            )
            .await?
            .with_context(|| format!("a workspace has at most {} endpoints", db::MAX_ENDPOINTS))?;
            let mut json = endpoint_json(&created);
            json["secret"] = json!(secret);
            Output {
                text: format!("{} {secret}", created.id),
                json,
            }
        }
        WebhookCommand::List { workspace } => {
            let all = db::list(pool, workspace).await?;
            Output {
                text: all
                    .iter()
                    .map(|e| {
                        format!(
                            "{} {} {} {}",
                            e.id,
                            if e.enabled { "enabled" } else { "disabled" },
                            e.url,
                            e.event_types.join(",")
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n"),
                json: json!({ "items": all.iter().map(endpoint_json).collect::<Vec<_>>() }),
            }
        }
        WebhookCommand::Set {
            workspace,
            id,
            enabled,
        } => {
            let patch = db::EndpointPatch {
                enabled: Some(enabled),
                ..db::EndpointPatch::default()
            };
            let e = db::update(pool, workspace, id, &patch)
                .await?
                .with_context(|| format!("no webhook {id} in workspace {workspace}"))?;
            Output {
                text: format!("{id} {}", if e.enabled { "enabled" } else { "disabled" }),
                json: endpoint_json(&e),
            }
        }
        WebhookCommand::RotateSecret {
            workspace,
            id,
            grace,
        } => {
            let secret = crate::service::webhooks::new_secret().context("no system randomness")?;
            let e = db::rotate(pool, workspace, id, &secret, grace)
                .await?
                .with_context(|| format!("no webhook {id} in workspace {workspace}"))?;
            let mut json = endpoint_json(&e);
            json["secret"] = json!(secret);
            Output { text: secret, json }
        }
        WebhookCommand::Delete { workspace, id } => {
            if !db::delete(pool, workspace, id).await? {
                bail!("no webhook {id} in workspace {workspace}");
            }
            Output {
                text: format!("deleted {id}"),
                json: json!({ "id": id, "deleted": true }),
            }
        }
    })
}
