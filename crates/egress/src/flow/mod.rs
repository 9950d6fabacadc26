//! NetFlow v5/v9 and IPFIX parsing (pure, no I/O).
