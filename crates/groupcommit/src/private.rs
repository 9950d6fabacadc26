//! Files only port25's user may read (account hashes, the abuse desk's
//! records, greylisting triplets): made 0600 before SQLite opens them,
//! whatever the umask. SQLite gives its `-wal` and `-shm` files the
//! database's mode, so they follow; a file an older version left readable
//! is narrowed.

use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// Creates `path` 0600 if missing, narrows it (and its SQLite sidecars) to
/// 0600 if group or others may read it.
pub fn private_file(path: &Path) -> std::io::Result<()> {
    let f = std::fs::OpenOptions::new().read(true).write(true).create(true).truncate(false).mode(0o600).open(path)?;
    if f.metadata()?.permissions().mode() & 0o077 != 0 {
        f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    for suffix in ["-wal", "-shm"] {
        let mut p = path.as_os_str().to_owned();
        p.push(suffix);
        match std::fs::metadata(&p) {
            Ok(m) if m.permissions().mode() & 0o077 != 0 => {
                std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600))?
            }
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn made_and_narrowed_to_0600() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("x.sqlite");
        private_file(&db).unwrap();
        assert_eq!(std::fs::metadata(&db).unwrap().permissions().mode() & 0o777, 0o600);
        let wal = dir.path().join("x.sqlite-wal");
        std::fs::write(&wal, b"").unwrap();
        std::fs::set_permissions(&wal, std::fs::Permissions::from_mode(0o644)).unwrap();
        std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).unwrap();
        private_file(&db).unwrap();
        for p in [&db, &wal] {
            assert_eq!(std::fs::metadata(p).unwrap().permissions().mode() & 0o777, 0o600, "{}", p.display());
        }
    }
}
