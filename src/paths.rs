//! Platform directories. `$XDG_CONFIG_HOME`, `$XDG_DATA_HOME` and
//! `$XDG_STATE_HOME` are honoured on every platform; otherwise the
//! `directories` crate's platform defaults apply.

use std::path::{Path, PathBuf};

use directories::ProjectDirs;

fn project() -> Option<ProjectDirs> {
    ProjectDirs::from("", "", "shipdeck")
}

fn xdg(var: &str) -> Option<PathBuf> {
    std::env::var_os(var)
        .filter(|v| !v.is_empty())
        .map(|v| PathBuf::from(v).join("shipdeck"))
}

pub fn config_dir() -> Option<PathBuf> {
    xdg("XDG_CONFIG_HOME").or_else(|| project().map(|p| p.config_dir().to_path_buf()))
}

pub fn data_dir() -> Option<PathBuf> {
    xdg("XDG_DATA_HOME").or_else(|| project().map(|p| p.data_dir().to_path_buf()))
}

/// Where logs go: the state dir where the platform has one, else the data dir.
pub fn state_dir() -> Option<PathBuf> {
    xdg("XDG_STATE_HOME")
        .or_else(|| project().and_then(|p| p.state_dir().map(|d| d.to_path_buf())))
        .or_else(data_dir)
}

pub fn log_file() -> Option<PathBuf> {
    state_dir().map(|d| d.join("shipdeck.log"))
}

/// Create `dir` (and its missing parents) readable by the owner only
/// (0700 on Unix). Directories that already exist are left as they are:
/// they may be shared on purpose.
pub fn ensure_private_dir(dir: &Path) -> std::io::Result<()> {
    if dir.as_os_str().is_empty() || dir.is_dir() {
        return Ok(());
    }
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
    b.create(dir)
}

/// Open `path` for appending, creating it (and its directory, see
/// [`ensure_private_dir`]) readable and writable by the owner only (0600 on
/// Unix). A file of ours that already exists with wider permissions is
/// narrowed to 0600.
pub fn create_private_file(path: &Path) -> std::io::Result<std::fs::File> {
    if let Some(dir) = path.parent() {
        ensure_private_dir(dir)?;
    }
    // A FIFO at the log's path made every command wait in open() for a
    // reader, before it could even hear Ctrl-C; a device is no file of
    // ours either.
    if let Ok(m) = std::fs::metadata(path)
        && !m.is_file()
    {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("{} is not a regular file", path.display()),
        ));
    }
    let mut o = std::fs::OpenOptions::new();
    o.create(true).append(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        // Never wait in open() (a FIFO put there after the check above);
        // no effect on a regular file.
        o.mode(0o600).custom_flags(libc::O_NONBLOCK);
    }
    let file = o.open(path)?;
    make_private(path)?;
    Ok(file)
}

/// Narrow an existing file to 0600 (Unix); a missing file is fine.
pub fn make_private(path: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        match std::fs::metadata(path) {
            Ok(m) if m.permissions().mode() & 0o077 != 0 => {
                std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
            }
            Ok(_) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e),
        }
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        Ok(())
    }
}

/// Make an SQLite database file owner-only before it is opened: create it
/// empty with 0600 when missing (SQLite then creates its `-wal` and `-shm`
/// files with the same permissions), and narrow an existing database and
/// its `-wal`/`-shm` files to 0600 where we may (a read-only or shared
/// store is left as it is).
pub fn private_db_files(db: &Path) -> std::io::Result<()> {
    if !db.exists() {
        create_private_file(db)?;
    }
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let mut p = db.as_os_str().to_owned();
        p.push(suffix);
        let _ = make_private(Path::new(&p));
    }
    Ok(())
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn private_files_and_dirs_are_owner_only() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("a/b/shipdeck.log");
        create_private_file(&file).unwrap();
        assert_eq!(mode(&file), 0o600);
        assert_eq!(mode(&tmp.path().join("a")), 0o700);
        assert_eq!(mode(&tmp.path().join("a/b")), 0o700);
        // A world-readable file from an older version is narrowed.
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        create_private_file(&file).unwrap();
        assert_eq!(mode(&file), 0o600);
    }
}

/// The largest config file shipdeck reads: far above any real one.
pub const MAX_CONFIG_BYTES: u64 = 1024 * 1024;
/// The largest trace file `replay` reads (a day of 1 s steps is ~4 MB).
pub const MAX_TRACE_BYTES: u64 = 64 * 1024 * 1024;

/// Read a text file a user named, at most `cap` bytes: a directory, a
/// device that never ends (`/dev/zero`), a file past the cap or bytes that
/// are not UTF-8 are refused with a message saying which (and where, for
/// bad bytes), never read forever.
/// Open `path` for reading without waiting: opening a named pipe (FIFO)
/// blocks until a writer comes, which for `--config some-fifo` was for
/// ever, with Ctrl-C and SIGTERM unheard (the command's one thread was
/// stuck in `open`). Reads block again as usual once it is open; a FIFO
/// without a writer then reads as empty.
fn open_without_waiting(path: &Path) -> std::io::Result<std::fs::File> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        use std::os::unix::io::AsRawFd;
        let file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(path)?;
        let fd = file.as_raw_fd();
        // SAFETY: fcntl on a descriptor this function owns, with flags it
        // read from that same descriptor.
        let ok = unsafe {
            let flags = libc::fcntl(fd, libc::F_GETFL);
            flags >= 0 && libc::fcntl(fd, libc::F_SETFL, flags & !libc::O_NONBLOCK) >= 0
        };
        if !ok {
            return Err(std::io::Error::last_os_error());
        }
        Ok(file)
    }
    #[cfg(not(unix))]
    std::fs::File::open(path)
}

fn is_fifo(file: &std::fs::File) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        file.metadata().is_ok_and(|m| m.file_type().is_fifo())
    }
    #[cfg(not(unix))]
    {
        let _ = file;
        false
    }
}

pub fn read_text_capped(path: &Path, cap: u64) -> Result<String, String> {
    use std::io::Read;
    if path.is_dir() {
        return Err("is a directory, not a file".into());
    }
    let file = open_without_waiting(path).map_err(|e| e.to_string())?;
    let fifo = is_fifo(&file);
    let mut bytes = Vec::new();
    file.take(cap + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| e.to_string())?;
    if fifo && bytes.is_empty() {
        return Err("a named pipe (FIFO) that nothing was written to, not a file".into());
    }
    if bytes.len() as u64 > cap {
        return Err(format!(
            "larger than {} KB: not a file shipdeck reads",
            cap / 1024
        ));
    }
    String::from_utf8(bytes).map_err(|e| {
        let at = e.utf8_error().valid_up_to();
        let before = &e.as_bytes()[..at];
        let line = before.iter().filter(|b| **b == b'\n').count() + 1;
        let column = before.iter().rev().take_while(|b| **b != b'\n').count() + 1;
        format!("not UTF-8 text: invalid byte at line {line}, column {column}")
    })
}
