// The `*_graded` binary of a blank program crate: the program named by `KATA_PROGRAM`
// when it was built (see harness/build.rs). Used by `cargo practice grade --file`.
include!(concat!(env!("OUT_DIR"), "/program.rs"));
