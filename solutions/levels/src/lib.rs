//! The solution programs are the binaries in `src/bin/`, one file per kata and level
//! (`batch_intermediate.rs`, …). This library is empty: each program stands alone, as
//! in an interview. `cargo practice solution <kata> --level <level>` prints one.
