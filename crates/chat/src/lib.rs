//! bingfa-chat: the group chat room: the line protocol, the room on the Hub, the WebSocket
//! bridge and web page, and the terminal client.

pub mod client;
pub mod web;
pub mod ws;
