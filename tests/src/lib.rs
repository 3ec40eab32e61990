//! Cross-crate tests live in this package's test targets (`store/`, …); this
//! library is empty.
