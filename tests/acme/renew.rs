//! Renewal and restarts.
