//! `/who`: one `* ` line listing who is online, in join order.

/// `* online (N): a, b, c`
pub fn reply(members: &[(u64, String)]) -> String {
    let names: Vec<&str> = members.iter().map(|(_, n)| n.as_str()).collect();
    format!("* online ({}): {}\n", names.len(), names.join(", "))
}
