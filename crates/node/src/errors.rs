//! Engine errors cross the boundary as a JSON reason
//! (`{"code","message","details"}`) that `src/errors.ts` turns into the
//! matching error class.

use napi::Status;

pub fn to_napi(e: in_mem_core::Error) -> napi::Error {
    napi::Error::new(Status::GenericFailure, e.to_json())
}

pub trait IntoNapi<T> {
    fn napi(self) -> napi::Result<T>;
}

impl<T> IntoNapi<T> for in_mem_core::Result<T> {
    fn napi(self) -> napi::Result<T> {
        self.map_err(to_napi)
    }
}

pub fn invalid(message: impl Into<String>) -> napi::Error {
    to_napi(in_mem_core::Error::invalid_argument(message))
}
