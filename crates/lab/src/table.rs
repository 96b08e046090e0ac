//! Plain-text tables for lab results (comfy-table) and human units.

/// Format a number with a unit, scaled to something readable (k, M, G; B/s as MB/s, GB/s).
pub fn human(v: f64, unit: &str) -> String {
    if unit == "B/s" {
        return if v >= 1e9 {
            format!("{:.2} GB/s", v / 1e9)
        } else {
            format!("{:.0} MB/s", v / 1e6)
        };
    }
    if unit == "µs" {
        return format!("{v:.2} µs");
    }
    if unit == "% core" {
        return format!("{v:.2} % core");
    }
    let (x, suffix) = if v >= 1e6 {
        (v / 1e6, "M")
    } else if v >= 1e4 {
        (v / 1e3, "k")
    } else {
        (v, "")
    };
    format!("{x:.1}{suffix} {unit}")
}

/// Render rows (first row is the header) as a plain-text table (comfy-table, ASCII borders so
/// it pastes into Markdown and logs alike).
pub fn render(rows: &[Vec<String>]) -> String {
    let mut t = comfy_table::Table::new();
    t.load_preset(comfy_table::presets::ASCII_MARKDOWN);
    let mut it = rows.iter();
    if let Some(head) = it.next() {
        t.set_header(head);
    }
    for r in it {
        t.add_row(r);
    }
    format!("{t}\n")
}
