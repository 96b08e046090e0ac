//! bingfa-http: HTTP/1.1 written once as a sans-IO session (parser, responses, static files,
//! routes) and driven by any concurrency model from bingfa-net.

pub mod parser;
