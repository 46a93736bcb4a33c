//! Failures: each logged once with the CA's text, the old certificate still served.
