//! Files on disk: the database, its -wal and -shm, and backups are 0600; a
//! backup refuses a dangling symlink and creates nothing through it. SQLite's
//! files, on SQLite whatever the run's backend.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::support::*;

/// The permission bits of `path`.
fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

#[tokio::test]
async fn the_database_and_its_wal_and_shm_are_0600() {
    within("the database's file modes", async {
        let mut srv = TestServer::start_sqlite().await;
        // A write, so the WAL certainly holds something.
        create_incident(&mut srv.incidents().await, plain_incident("on disk")).await;
        for suffix in ["", "-wal", "-shm"] {
            let path = PathBuf::from(format!("{}{suffix}", srv.db.sqlite_file().display()));
            assert_eq!(format!("{:o}", mode(&path)), "600", "{}", path.display());
        }
        srv.stop().await;
    })
    .await
}

#[tokio::test]
async fn backup_refuses_a_dangling_symlink_and_writes_new_files_0600() {
    within("backups", async {
        let mut srv = TestServer::start_sqlite().await;
        create_incident(&mut srv.incidents().await, plain_incident("backed up")).await;
        let dir = tempfile::tempdir().expect("tempdir");
        let database = srv.db.as_str();

        // A dangling symlink: refused, and its target is not created.
        let target = dir.path().join("target.db");
        let link = dir.path().join("link.db");
        std::os::unix::fs::symlink(&target, &link).expect("symlink");
        let err = incidentd::store::Store::backup(database, &link)
            .await
            .expect_err("a symlink is refused");
        assert!(err.to_string().contains("symlink"), "{err}");
        assert!(!target.exists(), "nothing created through the link");
        assert!(
            std::fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );

        // An existing file: refused and left as it was.
        let existing = dir.path().join("existing.db");
        std::fs::write(&existing, b"keep").unwrap();
        incidentd::store::Store::backup(database, &existing)
            .await
            .expect_err("an existing file is refused");
        assert_eq!(std::fs::read(&existing).unwrap(), b"keep");

        // A new path: a 0600 copy that opens and holds the incident.
        let dest = dir.path().join("backup.db");
        incidentd::store::Store::backup(database, &dest)
            .await
            .expect("backup");
        assert_eq!(format!("{:o}", mode(&dest)), "600");
        assert_eq!(sqlite_count(&dest, "incidents").await, 1);
        let mut names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, ["backup.db", "existing.db", "link.db"]);
        srv.stop().await;
    })
    .await
}
