//! bingfa-ftp: FTP as a sans-IO session (commands, replies, the file-system jail, the data
//! channel) plus a client.

// client
pub mod client;
