//! The diagnostic log every service writes to stderr: `--log-format text|json` and
//! `--log-level`, one subscriber (tracing-subscriber's `fmt`) set up once per process.
//!
//! Text is tracing-subscriber's default line, `TIME LEVEL target: message key=value ...`;
//! JSON is one flat object per line (`timestamp`, `level`, `message`, the fields, `target`).
//! Peer-supplied strings (user names, paths, chat names and text) are passed as `&str` field
//! values, never formatted into the message: the text format writes a `&str` field with Rust's
//! `Debug` escaping (quoted; `"`, `\`, controls, C1 and bidi controls escaped), the JSON
//! format as a JSON string, so a client cannot end a line or fake one.

use std::io::IsTerminal;
use tracing_subscriber::EnvFilter;

/// The log flags of a service (`http serve`, `chat serve`, `ftp serve`, `serve`).
#[derive(clap::Args, Debug, Clone, Default)]
pub(crate) struct LogArgs {
    /// Log line format on stderr: `text` (one readable line per event) or `json` (one JSON
    /// object per line).
    #[arg(long, default_value = "text", value_parser = ["text", "json"])]
    pub(crate) log_format: String,
    /// Least severe events logged: error, warn, info, debug or trace (default: `RUST_LOG` when
    /// set, else info).
    #[arg(long, value_parser = ["error", "warn", "info", "debug", "trace"])]
    pub(crate) log_level: Option<String>,
}

impl LogArgs {
    /// These flags as a child service takes them (`serve` passes its own on).
    pub(crate) fn to_flags(&self) -> Vec<String> {
        let mut v = vec!["--log-format".to_string(), self.log_format.clone()];
        if let Some(l) = &self.log_level {
            v.extend(["--log-level".to_string(), l.clone()]);
        }
        v
    }
}

/// Sets up this process's subscriber: `args` for a service, the defaults otherwise.
pub(crate) fn init(args: Option<&LogArgs>) {
    let default = LogArgs {
        log_format: "text".into(),
        log_level: None,
    };
    let args = args.unwrap_or(&default);
    let filter = match &args.log_level {
        Some(level) => EnvFilter::new(level),
        None => EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
    };
    let fmt = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if args.log_format == "json" {
        fmt.json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .init();
    } else {
        fmt.with_ansi(colour_on_stderr()).init();
    }
}

/// Colour in log lines only where a person reads them: stderr is a terminal and `NO_COLOR`
/// (no-color.org) is unset or empty. A file or a pipe gets plain text.
fn colour_on_stderr() -> bool {
    let no_color = matches!(std::env::var_os("NO_COLOR"), Some(v) if !v.is_empty());
    !no_color && std::io::stderr().is_terminal()
}
