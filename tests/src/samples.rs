//! Small real sample files for each allowed type, and impostors, made in memory.

/// A minimal valid one-page PDF.
#[must_use]
pub fn pdf() -> Vec<u8> {
    let objects = [
        "<< /Type /Catalog /Pages 2 0 R >>",
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 200] /Contents 4 0 R >>",
        "<< /Length 35 >>\nstream\nBT /F1 12 Tf 20 100 Td (hi) Tj ET\nendstream",
    ];
    let mut out = b"%PDF-1.4\n".to_vec();
    let mut offsets = Vec::new();
    for (i, body) in objects.iter().enumerate() {
        offsets.push(out.len());
        out.extend_from_slice(format!("{} 0 obj\n{body}\nendobj\n", i + 1).as_bytes());
    }
    let xref = out.len();
    out.extend_from_slice(
        format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).as_bytes(),
    );
    for o in offsets {
        out.extend_from_slice(format!("{o:010} 00000 n \n").as_bytes());
    }
    out.extend_from_slice(
        format!(
            "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
            objects.len() + 1
        )
        .as_bytes(),
    );
    out
}

/// A minimal DOCX: a stored (uncompressed) ZIP of the three parts Word needs.
#[must_use]
pub fn docx() -> Vec<u8> {
    zip(&[
        (
            "[Content_Types].xml",
            r#"<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>"#,
        ),
        (
            "_rels/.rels",
            r#"<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="word/document.xml"/></Relationships>"#,
        ),
        (
            "word/document.xml",
            r#"<?xml version="1.0" encoding="UTF-8"?><w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body><w:p><w:r><w:t>hello</w:t></w:r></w:p></w:body></w:document>"#,
        ),
    ])
}

/// A ZIP archive of stored entries.
#[must_use]
pub fn zip(entries: &[(&str, &str)]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut central = Vec::new();
    for (name, body) in entries {
        let (name, body) = (name.as_bytes(), body.as_bytes());
        let crc = crc32(body);
        let offset = u32::try_from(out.len()).expect("small archive");
        let size = u32::try_from(body.len()).expect("small entry");
        let name_len = u16::try_from(name.len()).expect("short name");
        out.extend_from_slice(b"PK\x03\x04");
        out.extend_from_slice(&[20, 0, 0, 0, 0, 0, 0, 0, 0x21, 0]);
        out.extend_from_slice(&crc.to_le_bytes());
        out.extend_from_slice(&size.to_le_bytes());
        out.extend_from_slice(&size.to_le_bytes());
        out.extend_from_slice(&name_len.to_le_bytes());
        out.extend_from_slice(&[0, 0]);
        out.extend_from_slice(name);
        out.extend_from_slice(body);
        central.extend_from_slice(b"PK\x01\x02");
        central.extend_from_slice(&[20, 0, 20, 0, 0, 0, 0, 0, 0, 0, 0x21, 0]);
        central.extend_from_slice(&crc.to_le_bytes());
        central.extend_from_slice(&size.to_le_bytes());
        central.extend_from_slice(&size.to_le_bytes());
        central.extend_from_slice(&name_len.to_le_bytes());
        central.extend_from_slice(&[0; 12]);
        central.extend_from_slice(&offset.to_le_bytes());
        central.extend_from_slice(name);
    }
    let cd_offset = u32::try_from(out.len()).expect("small archive");
    let cd_size = u32::try_from(central.len()).expect("small archive");
    let count = u16::try_from(entries.len()).expect("few entries");
    out.extend_from_slice(&central);
    out.extend_from_slice(b"PK\x05\x06\0\0\0\0");
    out.extend_from_slice(&count.to_le_bytes());
    out.extend_from_slice(&count.to_le_bytes());
    out.extend_from_slice(&cd_size.to_le_bytes());
    out.extend_from_slice(&cd_offset.to_le_bytes());
    out.extend_from_slice(&[0, 0]);
    out
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[must_use]
pub fn html() -> Vec<u8> {
    b"<!doctype html><html><head><title>q3</title></head><body><p>Quarterly \xc3\xa9t\xc3\xa9</p></body></html>\n".to_vec()
}

#[must_use]
pub fn txt() -> Vec<u8> {
    "plain text, with UTF-8: ünïcödé\n".as_bytes().to_vec()
}

#[must_use]
pub fn markdown() -> Vec<u8> {
    b"# Notes\n\n- one\n- two\n".to_vec()
}

/// The start of a 64-bit Linux executable.
#[must_use]
pub fn elf() -> Vec<u8> {
    let mut v = b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0\x02\0\x3e\0\x01\0\0\0".to_vec();
    v.resize(256, 0);
    v
}

/// The start of a Windows executable.
#[must_use]
pub fn pe() -> Vec<u8> {
    let mut v = b"MZ\x90\0\x03\0\0\0\x04\0\0\0\xff\xff\0\0".to_vec();
    v.resize(256, 0);
    v
}

/// A complete 1×1 RGBA PNG: signature, IHDR, IDAT (zlib, stored block) and IEND,
/// each chunk with its CRC.
#[must_use]
pub fn png() -> Vec<u8> {
    fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
        out.extend_from_slice(&u32::try_from(data.len()).expect("small").to_be_bytes());
        let mut crc_input = kind.to_vec();
        crc_input.extend_from_slice(data);
        out.extend_from_slice(&crc_input);
        out.extend_from_slice(&crc32(&crc_input).to_be_bytes());
    }
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    chunk(&mut out, b"IHDR", &[0, 0, 0, 1, 0, 0, 0, 1, 8, 6, 0, 0, 0]);
    // One scanline: filter byte 0, then one RGBA pixel; zlib with one stored block.
    let raw = [0u8, 0x33, 0x99, 0xff, 0xff];
    let mut zlib = vec![0x78, 0x01, 0x01, 0x05, 0x00, 0xfa, 0xff];
    zlib.extend_from_slice(&raw);
    zlib.extend_from_slice(&adler32(&raw).to_be_bytes());
    chunk(&mut out, b"IDAT", &zlib);
    chunk(&mut out, b"IEND", &[]);
    out
}

fn adler32(data: &[u8]) -> u32 {
    let (mut a, mut b) = (1u32, 0u32);
    for &x in data {
        a = (a + u32::from(x)) % 65521;
        b = (b + a) % 65521;
    }
    (b << 16) | a
}

/// A 1×1 GIF89a (header, logical screen, global palette, image, trailer).
#[must_use]
pub fn gif() -> Vec<u8> {
    b"GIF89a\x01\0\x01\0\x80\0\0\xff\xff\xff\0\0\0!\xf9\x04\x01\0\0\0\0,\0\0\0\0\x01\0\x01\0\0\x02\x02D\x01\0;"
        .to_vec()
}

/// A 1×1 baseline JPEG (JFIF), the smallest a decoder accepts.
#[must_use]
pub fn jpeg() -> Vec<u8> {
    let hex = "ffd8ffe000104a46494600010100000100010000ffdb004300080606070605080707070909080a0c\
               140d0c0b0b0c1912130f141d1a1f1e1d1a1c1c20242e2720222c231c1c2837292c30313434341f27\
               393d38323c2e333432ffc0000b080001000101011100ffc4001f0000010501010101010100000000\
               000000000102030405060708090a0bffc400b5100002010303020403050504040000017d01020300\
               041105122131410613516107227114328191a1082342b1c11552d1f02433627282090a161718191a\
               25262728292a3435363738393a434445464748494a535455565758595a636465666768696a737475\
               767778797a838485868788898a92939495969798999aa2a3a4a5a6a7a8a9aab2b3b4b5b6b7b8b9ba\
               c2c3c4c5c6c7c8c9cad2d3d4d5d6d7d8d9dae1e2e3e4e5e6e7e8e9eaf1f2f3f4f5f6f7f8f9faffda\
               0008010100003f00fbd3ffd9";
    hex_bytes(hex)
}

fn hex_bytes(hex: &str) -> Vec<u8> {
    let digits: Vec<u8> = hex.bytes().filter(u8::is_ascii_hexdigit).collect();
    digits
        .chunks(2)
        .map(|p| u8::from_str_radix(std::str::from_utf8(p).expect("ascii"), 16).expect("hex"))
        .collect()
}

/// A 1×1 lossless WebP (RIFF, `WEBP`, one `VP8L` chunk).
#[must_use]
pub fn webp() -> Vec<u8> {
    let vp8l: &[u8] = b"\x2f\x00\x00\x00\x00\x07\x10\x11\x11\x88\x88\xfe\x07\x00";
    let mut out = b"RIFF".to_vec();
    let size = u32::try_from(4 + 8 + vp8l.len()).expect("small");
    out.extend_from_slice(&size.to_le_bytes());
    out.extend_from_slice(b"WEBPVP8L");
    out.extend_from_slice(&u32::try_from(vp8l.len()).expect("small").to_le_bytes());
    out.extend_from_slice(vp8l);
    out
}

/// 0.1 s of 8 kHz mono 16-bit PCM silence in a RIFF/WAVE file.
#[must_use]
pub fn wav() -> Vec<u8> {
    let samples = vec![0u8; 1600];
    let mut out = b"RIFF".to_vec();
    out.extend_from_slice(
        &u32::try_from(36 + samples.len())
            .expect("small")
            .to_le_bytes(),
    );
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes()); // PCM
    out.extend_from_slice(&1u16.to_le_bytes()); // mono
    out.extend_from_slice(&8000u32.to_le_bytes());
    out.extend_from_slice(&16000u32.to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&16u16.to_le_bytes());
    out.extend_from_slice(b"data");
    out.extend_from_slice(&u32::try_from(samples.len()).expect("small").to_le_bytes());
    out.extend_from_slice(&samples);
    out
}

/// An ID3v2.4 tag, then three MPEG-1 layer III frames of silence (128 kbit/s, 44.1 kHz).
#[must_use]
pub fn mp3() -> Vec<u8> {
    let mut out = b"ID3\x04\0\0\0\0\0\x0a".to_vec();
    out.extend_from_slice(&[0; 10]);
    for _ in 0..3 {
        let mut frame = vec![0xff, 0xfb, 0x90, 0x64];
        frame.resize(417, 0);
        out.extend_from_slice(&frame);
    }
    out
}

/// An MP4 (ISO BMFF) file: an `ftyp` box of brand `isom`, then `free` and `mdat` boxes.
/// A container with no tracks: enough for what completion checks, not for a player.
#[must_use]
pub fn mp4() -> Vec<u8> {
    let mut out = Vec::new();
    let mut boxed = |kind: &[u8; 4], body: &[u8]| {
        out.extend_from_slice(&u32::try_from(8 + body.len()).expect("small").to_be_bytes());
        out.extend_from_slice(kind);
        out.extend_from_slice(body);
    };
    boxed(b"ftyp", b"isom\0\0\x02\0isomiso2avc1mp41");
    boxed(b"free", &[]);
    boxed(b"mdat", &[0; 64]);
    out
}

/// A WebM file: an EBML header of doctype `webm`, then a Segment with an Info element.
/// A container with no tracks: enough for what completion checks, not for a player.
#[must_use]
pub fn webm() -> Vec<u8> {
    let mut out = vec![0x1a, 0x45, 0xdf, 0xa3, 0x9f];
    out.extend_from_slice(&[0x42, 0x86, 0x81, 0x01]); // EBMLVersion 1
    out.extend_from_slice(&[0x42, 0xf7, 0x81, 0x01]); // EBMLReadVersion 1
    out.extend_from_slice(&[0x42, 0xf2, 0x81, 0x04]); // EBMLMaxIDLength 4
    out.extend_from_slice(&[0x42, 0xf3, 0x81, 0x08]); // EBMLMaxSizeLength 8
    out.extend_from_slice(&[0x42, 0x82, 0x84]);
    out.extend_from_slice(b"webm"); // DocType
    out.extend_from_slice(&[0x42, 0x87, 0x81, 0x04]); // DocTypeVersion 4
    out.extend_from_slice(&[0x42, 0x85, 0x81, 0x02]); // DocTypeReadVersion 2
    // Segment (unknown size) with Info { TimecodeScale 1000000, Void padding }.
    out.extend_from_slice(&[
        0x18, 0x53, 0x80, 0x67, 0x01, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    ]);
    let mut info = vec![0x2a, 0xd7, 0xb1, 0x83, 0x0f, 0x42, 0x40];
    info.extend_from_slice(&[0xec, 0x40, 0xfa]);
    info.resize(info.len() + 0xfa, 0);
    out.extend_from_slice(&[0x15, 0x49, 0xa9, 0x66]);
    out.push(0x40 | u8::try_from(info.len() >> 8).expect("small"));
    out.push(u8::try_from(info.len() & 0xff).expect("small"));
    out.extend_from_slice(&info);
    out
}

/// A minimal XLSX: a stored ZIP of the parts Excel needs.
#[must_use]
pub fn xlsx() -> Vec<u8> {
    zip(&[
        (
            "[Content_Types].xml",
            r#"<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/><Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/></Types>"#,
        ),
        (
            "_rels/.rels",
            r#"<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>"#,
        ),
        (
            "xl/workbook.xml",
            r#"<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets><sheet name="Sheet1" sheetId="1" r:id="rId1"/></sheets></workbook>"#,
        ),
        (
            "xl/_rels/workbook.xml.rels",
            r#"<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/></Relationships>"#,
        ),
        (
            "xl/worksheets/sheet1.xml",
            r#"<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData><row r="1"><c r="A1" t="inlineStr"><is><t>score</t></is></c></row></sheetData></worksheet>"#,
        ),
    ])
}

/// A minimal PPTX: a stored ZIP of a presentation's parts.
#[must_use]
pub fn pptx() -> Vec<u8> {
    zip(&[
        (
            "[Content_Types].xml",
            r#"<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/ppt/presentation.xml" ContentType="application/vnd.openxmlformats-officedocument.presentationml.presentation.main+xml"/></Types>"#,
        ),
        (
            "_rels/.rels",
            r#"<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="ppt/presentation.xml"/></Relationships>"#,
        ),
        (
            "ppt/presentation.xml",
            r#"<?xml version="1.0" encoding="UTF-8"?><p:presentation xmlns:p="http://schemas.openxmlformats.org/presentationml/2006/main"><p:sldSz cx="9144000" cy="6858000"/><p:notesSz cx="6858000" cy="9144000"/></p:presentation>"#,
        ),
    ])
}

#[must_use]
pub fn csv() -> Vec<u8> {
    "prompt,expected,score\n\"Bonjour, ça va ?\",greeting,1\nhello,greeting,0.5\n"
        .as_bytes()
        .to_vec()
}

#[must_use]
pub fn tsv() -> Vec<u8> {
    b"prompt\texpected\nhello\tgreeting\n".to_vec()
}

#[must_use]
pub fn json() -> Vec<u8> {
    br#"{"eval": "safety", "prompts": [{"id": 1, "text": "hello"}], "threshold": 0.8}"#.to_vec()
}

#[must_use]
pub fn jsonl() -> Vec<u8> {
    b"{\"id\": 1, \"prompt\": \"hello\"}\n{\"id\": 2, \"prompt\": \"bye\"}\n".to_vec()
}

/// Bytes no sniffer recognizes, deterministically.
#[must_use]
pub fn random(len: usize) -> Vec<u8> {
    let mut x = 0x2545_f491_4f6c_dd1du64;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x.to_le_bytes()[0]
        })
        .collect()
}
