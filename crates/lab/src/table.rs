//! Plain-text tables for lab results: aligned columns, human units.

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
    let (x, suffix) = if v >= 1e6 {
        (v / 1e6, "M")
    } else if v >= 1e4 {
        (v / 1e3, "k")
    } else {
        (v, "")
    };
    format!("{x:.1}{suffix} {unit}")
}

/// Render rows (first row is the header) with columns padded to the widest cell.
pub fn render(rows: &[Vec<String>]) -> String {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let width: Vec<usize> = (0..cols)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for (i, r) in rows.iter().enumerate() {
        let line: Vec<String> = r
            .iter()
            .enumerate()
            .map(|(c, s)| format!("{s}{}", " ".repeat(width[c] - s.chars().count())))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
        if i == 0 {
            let rule: Vec<String> = width.iter().map(|w| "-".repeat(*w)).collect();
            out.push_str(&rule.join("  "));
            out.push('\n');
        }
    }
    out
}
