//! Files that hold secrets (the database, `keys.json`, backups, bundles, a server's key and
//! database, provisioning files) are readable by their owner only: 0600, in a folder this
//! program made 0700. On a laptop shared by several OS accounts, or a server where other
//! services run, no other account can copy them to guess a password offline.

use std::fs::File;
use std::io::{self, Write};
use std::path::Path;

/// Creates `dir` (and its parents) if it does not exist; a folder made here is the owner's
/// only. A folder that already exists is left as it is (it may be one the user chose).
pub fn private_dir(dir: &Path) -> io::Result<()> {
    if dir.exists() {
        return Ok(());
    }
    std::fs::create_dir_all(dir)?;
    set_mode(dir, 0o700)
}

/// Makes an existing file readable and writable by its owner only.
pub fn make_private(path: &Path) -> io::Result<()> {
    set_mode(path, 0o600)
}

/// Creates (or truncates) a file readable and writable by its owner only.
pub fn create_private(path: &Path) -> io::Result<File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let file = options.open(path)?;
    // An existing file keeps its mode through open: set it.
    make_private(path)?;
    Ok(file)
}

/// Writes `bytes` to a file readable by its owner only (see [`create_private`]).
pub fn write_private(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut f = create_private(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

#[cfg(unix)]
fn set_mode(path: &Path, mode: u32) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
}

#[cfg(not(unix))]
fn set_mode(_path: &Path, _mode: u32) -> io::Result<()> {
    Ok(())
}
