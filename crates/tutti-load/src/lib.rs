//! tutti-load (skeleton)
