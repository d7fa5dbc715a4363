//! The data-directory lock: an OS file lock on `LOCK`, holding the owner's
//! pid so that the process that is refused can name the holder. The OS drops
//! the lock when the process dies, however it dies.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

use in_mem_core::{Error, Result};

pub struct DirLock {
    _file: File,
}

impl DirLock {
    pub fn acquire(dir: &Path) -> Result<DirLock> {
        let path = dir.join("LOCK");
        let mut file = OpenOptions::new().read(true).write(true).create(true).truncate(false).open(&path).map_err(|e| Error::io(path.display(), e))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let mut text = String::new();
                let _ = file.read_to_string(&mut text);
                let pid: Option<u32> = text.trim().parse().ok();
                if pid == Some(std::process::id()) {
                    // This process holds it, under another path to the same
                    // directory (a bind mount, say): the registry shares one
                    // engine per canonical path only.
                    return Err(Error::invalid_argument(format!("{} is already open in this process under another path; open it by one path", dir.display())));
                }
                return Err(Error::Locked { path: dir.display().to_string(), pid });
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(Error::io(path.display(), e)),
        }
        file.set_len(0).map_err(|e| Error::io(path.display(), e))?;
        file.seek(SeekFrom::Start(0)).map_err(|e| Error::io(path.display(), e))?;
        write!(file, "{}", std::process::id()).map_err(|e| Error::io(path.display(), e))?;
        file.flush().map_err(|e| Error::io(path.display(), e))?;
        Ok(DirLock { _file: file })
    }
}
