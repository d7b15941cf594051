//! The files the store creates: the database and its backups, owner-only
//! (0600). SQLite gives the -wal and -shm files the permissions of the
//! database file, so creating that one 0600 covers them too.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use sqlx::sqlite::SqliteConnectOptions;

/// Permissions of every file the store creates.
pub const FILE_MODE: u32 = 0o600;

/// Creates `path` empty with mode 0600, failing if anything is there already,
/// a dangling symlink included: `O_CREAT | O_EXCL` follows no link, so there
/// is no window between a check and the creation.
pub fn create_new_private(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(FILE_MODE)
        .open(path)
}

/// The file `database` (`--database`: a path or a `sqlite:` URL, whose
/// options are `opts`) lives in; `None` for an in-memory database, and for a
/// URL that opens read-only (`mode=ro`). (`mode=rw` creates all the same: the
/// store opens with `create_if_missing`.)
pub fn database_file(database: &str, opts: &SqliteConnectOptions) -> Option<PathBuf> {
    if database.starts_with("sqlite:") {
        let query = database.split_once('?').map_or("", |(_, q)| q);
        let mode = query
            .split('&')
            .filter_map(|kv| kv.split_once('='))
            .find(|(k, _)| *k == "mode")
            .map(|(_, v)| v);
        if matches!(mode, Some("memory" | "ro")) {
            return None;
        }
    }
    let path = opts.get_filename();
    let name = path.to_string_lossy();
    // sqlx names a `sqlite::memory:` database "file:sqlx-in-memory-N".
    if name.is_empty() || name == ":memory:" || name.starts_with("file:sqlx-in-memory-") {
        return None;
    }
    Some(path.to_path_buf())
}

/// Before SQLite opens the database: creates its file with mode 0600 if it
/// does not exist yet (an empty file is an empty database to SQLite). An
/// existing file keeps its mode; a warning says so if group or others may
/// read or write it.
pub fn prepare_database_file(database: &str, opts: &SqliteConnectOptions) -> io::Result<()> {
    let Some(path) = database_file(database, opts) else {
        return Ok(());
    };
    match create_new_private(&path) {
        Ok(_) => {
            tracing::debug!(path = %path.display(), "database file created, mode 0600");
            Ok(())
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            warn_if_shared(&path);
            Ok(())
        }
        Err(e) => Err(io::Error::new(
            e.kind(),
            format!("creating database file {}: {e}", path.display()),
        )),
    }
}

/// Logs a warning when group or others have any access to the file at `path`.
fn warn_if_shared(path: &Path) {
    // Through a symlink, what matters is the file SQLite will open.
    if let Ok(meta) = std::fs::metadata(path) {
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            tracing::warn!(
                path = %path.display(),
                mode = %format!("{mode:04o}"),
                "the database file is accessible to group or others; \
                 consider chmod 600 (and the same for its -wal and -shm files)"
            );
        }
    }
}

/// Why a backup destination is refused, if it is: anything at all at `dest`
/// (a file, a directory, a symlink even dangling) is.
pub fn check_backup_destination(dest: &Path) -> Result<(), String> {
    match std::fs::symlink_metadata(dest) {
        Ok(meta) if meta.file_type().is_symlink() => Err(format!(
            "{} is a symlink; give a path that does not exist",
            dest.display()
        )),
        Ok(_) => Err(format!("{} already exists", dest.display())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(format!("{}: {e}", dest.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn a_new_database_file_is_created_0600() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.sqlite");
        let database = path.to_str().unwrap();
        let opts = SqliteConnectOptions::new().filename(&path);
        prepare_database_file(database, &opts).unwrap();
        assert_eq!(mode(&path), 0o600);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 0);
    }

    #[test]
    fn a_sqlite_url_names_a_file_too() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("url.sqlite");
        let url = format!("sqlite://{}", path.display());
        let opts = SqliteConnectOptions::from_str(&url).unwrap();
        assert_eq!(database_file(&url, &opts), Some(path.clone()));
        prepare_database_file(&url, &opts).unwrap();
        assert_eq!(mode(&path), 0o600);
    }

    #[test]
    fn in_memory_databases_have_no_file() {
        for url in [
            "sqlite::memory:",
            "sqlite://:memory:",
            "sqlite://?mode=memory",
            "sqlite://nowhere.db?mode=memory",
            "sqlite://nowhere.db?mode=ro",
        ] {
            let opts = SqliteConnectOptions::from_str(url).unwrap();
            assert_eq!(database_file(url, &opts), None, "{url}");
            prepare_database_file(url, &opts).unwrap();
        }
        assert!(!Path::new("nowhere.db").exists());
    }

    #[test]
    fn an_existing_file_keeps_its_mode_and_content() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.sqlite");
        std::fs::write(&path, b"data").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let opts = SqliteConnectOptions::new().filename(&path);
        prepare_database_file(path.to_str().unwrap(), &opts).unwrap();
        assert_eq!(mode(&path), 0o644);
        assert_eq!(std::fs::read(&path).unwrap(), b"data");
    }

    #[test]
    fn backup_destinations_must_not_exist_at_all() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("file");
        std::fs::write(&file, b"").unwrap();
        let dangling = dir.path().join("dangling");
        let target = dir.path().join("target");
        std::os::unix::fs::symlink(&target, &dangling).unwrap();
        assert!(
            check_backup_destination(&file)
                .unwrap_err()
                .contains("exists")
        );
        assert!(check_backup_destination(dir.path()).is_err());
        assert!(
            check_backup_destination(&dangling)
                .unwrap_err()
                .contains("symlink")
        );
        assert!(check_backup_destination(&dir.path().join("new")).is_ok());
        // Even past the check, creation follows no link.
        assert!(create_new_private(&dangling).is_err());
        assert!(!target.exists());
        let new = dir.path().join("new");
        create_new_private(&new).unwrap();
        assert_eq!(mode(&new), 0o600);
    }
}
