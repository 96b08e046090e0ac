//! Admission: how a server takes connections in, and what it does when it cannot.

pub(crate) mod exhaustion;
