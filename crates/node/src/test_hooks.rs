//! Test hooks, compiled only with the `test-hooks` feature (the debug build
//! `npm test` makes; the published release build has none) and left out of
//! the type declarations.

use napi::bindgen_prelude::*;
use napi_derive::napi;

use crate::database::NativeDatabase;

#[napi]
impl NativeDatabase {
    /// A Rust panic must reach JS as an error, never a crash.
    #[napi(catch_unwind, skip_typescript)]
    pub fn panic_for_test(&self) -> Result<()> {
        panic!("deliberate panic from panicForTest");
    }

    /// While `on`, the strict WAL's syncer starts no fsync: async commits
    /// wait, and the round after covers them all.
    #[napi(catch_unwind, skip_typescript)]
    pub fn hold_syncer_for_test(&self, on: bool) -> Result<()> {
        self.engine()?.hold_syncer_for_test(on);
        Ok(())
    }

    /// A packing pass now, due or not; how many keys moved.
    #[napi(catch_unwind, skip_typescript)]
    pub fn pack_for_test(&self) -> Result<u32> {
        Ok(self.engine()?.pack(true) as u32)
    }

    /// The maintenance thread's next round panics.
    #[napi(catch_unwind, skip_typescript)]
    pub fn panic_in_maintenance_for_test(&self) -> Result<()> {
        self.engine()?.panic_in_maintenance_for_test();
        Ok(())
    }
}
