//! tutti-wizard (skeleton)
