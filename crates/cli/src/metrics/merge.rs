//! `bingfa serve --metrics`: one endpoint for every service. The supervisor scrapes each
//! service's own endpoint (on a private loopback port) per request and merges the answers:
//! each family once, its samples from every service together (they differ by their `service`
//! label), one `# EOF`. OpenMetrics wants a family's samples contiguous and its `# TYPE` once,
//! which concatenating the bodies would break.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// How long one service's scrape may take.
const SCRAPE: Duration = Duration::from_secs(3);
/// The most a service's answer may be (they are a few KiB).
const MAX_BODY: u64 = 1 << 20;

/// `GET /metrics` from a service's endpoint; the body of a 200, else an error.
pub(crate) fn scrape(addr: SocketAddr) -> Result<String, String> {
    let go = || -> std::io::Result<Vec<u8>> {
        let mut s = TcpStream::connect_timeout(&addr, SCRAPE)?;
        s.set_read_timeout(Some(SCRAPE))?;
        s.set_write_timeout(Some(SCRAPE))?;
        s.write_all(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n")?;
        let mut out = Vec::new();
        s.take(MAX_BODY).read_to_end(&mut out)?;
        Ok(out)
    };
    let raw = go().map_err(|e| format!("scraping {addr}: {e}"))?;
    let text = String::from_utf8(raw).map_err(|_| format!("scraping {addr}: not UTF-8"))?;
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| format!("scraping {addr}: no response head"))?;
    if !head.starts_with("HTTP/1.1 200 ") {
        let status = head.lines().next().unwrap_or_default();
        return Err(format!("scraping {addr}: {status}"));
    }
    Ok(body.to_string())
}

/// The family a `# HELP`/`# TYPE`/`# UNIT` line names.
fn family_of(line: &str) -> Option<&str> {
    let rest = line
        .strip_prefix("# HELP ")
        .or_else(|| line.strip_prefix("# TYPE "))
        .or_else(|| line.strip_prefix("# UNIT "))?;
    rest.split(' ').next()
}

/// Merge OpenMetrics bodies whose samples differ by label: families in first-seen order, each
/// with the first body's metadata and every body's samples.
pub(crate) fn merge(bodies: &[String]) -> String {
    // (family, metadata lines, sample lines)
    let mut fams: Vec<(String, Vec<String>, Vec<String>)> = Vec::new();
    for body in bodies {
        let mut current: Option<usize> = None;
        for line in body.lines() {
            if line == "# EOF" || line.is_empty() {
                continue;
            }
            if let Some(name) = family_of(line) {
                let i = match fams.iter().position(|f| f.0 == name) {
                    Some(i) => i,
                    None => {
                        fams.push((name.to_string(), Vec::new(), Vec::new()));
                        fams.len() - 1
                    }
                };
                // `# HELP`, `# TYPE`, `# UNIT` once each: the first body's.
                let kind = line.split(' ').nth(1);
                if !fams[i].1.iter().any(|m| m.split(' ').nth(1) == kind) {
                    fams[i].1.push(line.to_string());
                }
                current = Some(i);
            } else if let Some(i) = current {
                fams[i].2.push(line.to_string());
            }
        }
    }
    let mut out = String::new();
    for (_, meta, samples) in &fams {
        for l in meta.iter().chain(samples) {
            out.push_str(l);
            out.push('\n');
        }
    }
    out.push_str("# EOF\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_merge_with_every_services_samples() {
        let a = "# HELP x_open Open.\n# TYPE x_open gauge\nx_open{service=\"http\"} 1\n\
                 # HELP x_a A.\n# TYPE x_a counter\nx_a_total{service=\"http\"} 2\n# EOF\n";
        let b = "# HELP x_open Open.\n# TYPE x_open gauge\nx_open{service=\"ftp\"} 3\n\
                 # HELP x_f F.\n# TYPE x_f counter\nx_f_total{service=\"ftp\"} 4\n# EOF\n";
        assert_eq!(
            merge(&[a.into(), b.into()]),
            "# HELP x_open Open.\n# TYPE x_open gauge\nx_open{service=\"http\"} 1\n\
             x_open{service=\"ftp\"} 3\n# HELP x_a A.\n# TYPE x_a counter\n\
             x_a_total{service=\"http\"} 2\n# HELP x_f F.\n# TYPE x_f counter\n\
             x_f_total{service=\"ftp\"} 4\n# EOF\n"
        );
    }
}
