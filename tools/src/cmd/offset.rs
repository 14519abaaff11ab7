//! `pktmap encode` and `pktmap decode`.

use super::invalid;
use clap::Args;
use pktmap::offset::{Layout, LAYOUTS, PAGE_SHIFT};
use serde_json::json;
use std::io;

/// `pktmap encode`.
#[derive(Args)]
pub struct EncodeArgs {
    /// pktmap, onload, io_uring, af_xdp or vfio.
    #[arg(long, short, default_value = "pktmap")]
    layout: String,
    /// The map type: a name the layout lists (POOL, PBUF_RING, FILL) or a number.
    #[arg(value_name = "TYPE")]
    map_type: String,
    /// The map id (decimal or 0x hex; the byte offset in the region for vfio).
    #[arg(default_value = "0")]
    id: String,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// `pktmap decode`.
#[derive(Args)]
pub struct DecodeArgs {
    /// Decode with this layout only.
    #[arg(long, short)]
    layout: Option<String>,
    /// The byte offset (decimal or 0x hex), or a page offset with --pgoff.
    offset: String,
    /// The number is vm_pgoff (the offset in pages), as the driver sees it.
    #[arg(long)]
    pgoff: bool,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

pub fn number(s: &str) -> io::Result<u64> {
    let t = s.replace('_', "");
    let r = match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => t.parse(),
    };
    r.map_err(|_| invalid(format!("not a number: {s}")))
}

pub fn layout(name: &str) -> io::Result<&'static Layout> {
    let want = name.to_ascii_lowercase().replace('-', "_");
    LAYOUTS.into_iter().find(|l| l.name == want).ok_or_else(|| {
        let names: Vec<_> = LAYOUTS.iter().map(|l| l.name).collect();
        invalid(format!(
            "unknown layout {name}; one of {}",
            names.join(", ")
        ))
    })
}

pub fn map_type(layout: &Layout, s: &str) -> io::Result<u32> {
    if let Some(types) = layout.types {
        if let Some(t) = types.iter().find(|t| t.name.eq_ignore_ascii_case(s)) {
            return Ok(t.value);
        }
    }
    let n = number(s).map_err(|_| {
        let names: Vec<_> = layout.types.unwrap_or(&[]).iter().map(|t| t.name).collect();
        invalid(format!(
            "{} has no type {s}; one of {} or a number",
            layout.name,
            names.join(", ")
        ))
    })?;
    u32::try_from(n).map_err(|_| invalid(format!("type {s} does not fit 32 bits")))
}

pub fn type_label(layout: &Layout, t: u32) -> String {
    layout
        .type_name(t)
        .map_or_else(|| t.to_string(), str::to_string)
}

/// Prints the offset of `(TYPE, ID)`.
pub fn encode(a: &EncodeArgs) -> io::Result<()> {
    let (ty, json) = (&a.map_type, a.json);
    let l = layout(&a.layout)?;
    let t = map_type(l, ty)?;
    let id = number(&a.id)?;
    let off = l.encode(t, id).map_err(|e| {
        invalid(format!(
            "cannot encode {ty} id {id} in the {} layout: {e}",
            l.name
        ))
    })?;
    if json {
        let v = json!({
            "layout": l.name,
            "type": t,
            "type_name": type_label(l, t),
            "id": id,
            "offset": off,
            "offset_hex": format!("{off:#x}"),
            "pgoff": off >> PAGE_SHIFT,
        });
        println!("{v}");
    } else {
        println!("{off:#x}");
    }
    Ok(())
}

/// Prints what each layout (or the one given) decodes the offset to; `Err` if none does.
pub fn decode(a: &DecodeArgs) -> io::Result<()> {
    let (layout_name, offset, pgoff, json) = (a.layout.as_deref(), &a.offset, a.pgoff, a.json);
    let n = number(offset)?;
    let layouts: Vec<&'static Layout> = match layout_name {
        Some(name) => vec![layout(name)?],
        None => LAYOUTS.to_vec(),
    };
    let mut rows = Vec::new();
    for l in &layouts {
        let r = if pgoff {
            l.decode_pgoff(n)
        } else {
            l.decode(n)
        };
        rows.push((*l, r));
    }
    if json {
        let items: Vec<serde_json::Value> = rows
            .iter()
            .map(|(l, r)| match r {
                Ok((t, id)) => json!({
                    "layout": l.name, "ok": true, "type": t,
                    "type_name": type_label(l, *t), "id": id,
                }),
                Err(e) => json!({"layout": l.name, "ok": false, "error": e.to_string()}),
            })
            .collect();
        println!("{}", serde_json::Value::Array(items));
    } else {
        for (l, r) in &rows {
            match r {
                // As `pktmap maps` names it: a type without a name is `type N`.
                Ok((t, id)) => match l.type_name(*t) {
                    Some(name) => println!("{:<9} {name} id {id}", l.name),
                    None => println!("{:<9} type {t} id {id}", l.name),
                },
                Err(e) => println!("{:<9} error: {e}", l.name),
            }
        }
    }
    if rows.iter().all(|(_, r)| r.is_err()) {
        let by = layout_name.map_or("any layout".to_string(), |n| format!("layout {n}"));
        return Err(io::Error::other(format!(
            "{offset} does not decode with {by}"
        )));
    }
    Ok(())
}
