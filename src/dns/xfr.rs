//! Outgoing zone transfers (placeholder: being written).
