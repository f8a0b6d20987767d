//! The kernel's and the devices' files (`/proc`, `/sys`, `/dev`): which are no
//! inputs, which describe the CPU, and which are the environment read whole.

use std::path::Path;

/// A process's environment as the kernel keeps it (`/proc/self/environ`, or another
/// process's).
pub(super) fn is_environ_file(p: &Path) -> bool {
    p.starts_with("/proc") && p.file_name().is_some_and(|n| n == "environ")
}

/// `Some(true)` for the CPU's description (`/proc/cpuinfo`, the CPU's directories in
/// `/sys`, a process's auxiliary vector, which holds its capabilities), `Some(false)` for the other kernel and
/// device files, `None` for ordinary paths: those of a file system mounted below `/dev`
/// too (`/dev/shm`, where some CI systems build), whose files are read like any.
pub(crate) fn special(p: &Path) -> Option<bool> {
    // Each answer lies below `/proc`, `/sys` or `/dev`: anything else is told by its
    // first two components (most of a run's paths).
    let mut top = p.components().map(|c| c.as_os_str());
    let (Some(root), Some(first)) = (top.next(), top.next()) else {
        return None;
    };
    if root != "/" || !["proc", "sys", "dev"].iter().any(|d| first == *d) {
        return None;
    }
    let auxv = p.starts_with("/proc") && p.file_name().is_some_and(|n| n == "auxv");
    if p == Path::new("/proc/cpuinfo") || p.starts_with("/sys/devices/system/cpu") || auxv {
        return Some(true);
    }
    if p.starts_with("/proc") || p.starts_with("/sys") {
        return Some(false);
    }
    dev_special(p)
}

/// Below `/dev`: devices, pipes, sockets, the kernel's directories of them and terminals
/// (`/dev/pts`) are not inputs; a regular file is, and a directory on a file system
/// mounted there (its device is not `/dev`'s), or below `/dev/shm`. A path that is not
/// there is an ordinary probe. A symbolic link (`/dev/stdin`, `/dev/fd`) is what it
/// leads to.
fn dev_special(p: &Path) -> Option<bool> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::symlink_metadata(p).ok()?;
    let kind = meta.file_type();
    if kind.is_symlink() {
        return match std::fs::canonicalize(p) {
            Ok(real) if real.starts_with("/dev") => dev_special(&real),
            Ok(real) => special(&real),
            // Dangling, or into a process's descriptors.
            Err(_) => Some(false),
        };
    }
    if kind.is_file() {
        return None;
    }
    if !kind.is_dir() {
        return Some(false); // a device, a pipe, a socket
    }
    let kernels = std::fs::metadata("/dev").map(|m| m.dev()).ok() == Some(meta.dev());
    let terminals = p.starts_with("/dev/pts") || p.starts_with("/dev/mqueue");
    if p.starts_with("/dev/shm") || !(kernels || terminals) {
        None
    } else {
        Some(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file system mounted below `/dev` (`/dev/shm`) holds ordinary files: a checkout
    /// or a script's data there is read like any (they were taken for device files, and
    /// a build that read them was keyed on nothing of them).
    #[test]
    fn files_below_dev_shm_are_ordinary() {
        let shm = Path::new("/dev/shm");
        assert!(shm.is_dir(), "this test needs /dev/shm");
        let d = tempfile::tempdir_in(shm).unwrap();
        let file = d.path().join("data.txt");
        std::fs::write(&file, "x").unwrap();
        assert_eq!(special(&file), None);
        assert_eq!(special(d.path()), None);
        assert_eq!(special(&d.path().join("absent.txt")), None);
        let link = d.path().join("link");
        std::os::unix::fs::symlink(&file, &link).unwrap();
        assert_eq!(special(&link), None);
    }

    #[test]
    fn the_environment_and_the_machine_read_without_a_name() {
        assert_eq!(special(Path::new("/proc/self/auxv")), Some(true));
        assert_eq!(special(Path::new("/proc/1234/auxv")), Some(true));
        assert_eq!(special(Path::new("/proc/self/status")), Some(false));
        // Told component by component, as `starts_with` compares.
        assert_eq!(special(Path::new("//proc/./cpuinfo")), Some(true));
        assert_eq!(
            special(Path::new("/sys/devices/system/cpu/cpu0")),
            Some(true)
        );
        assert_eq!(special(Path::new("/dev/null")), Some(false));
        assert_eq!(special(Path::new("/dev/stdin")), Some(false));
        assert_eq!(special(Path::new("/dev")), Some(false));
        assert_eq!(special(Path::new("/proc")), Some(false));
        assert_eq!(special(Path::new("/procfs/cpuinfo")), None);
        assert_eq!(special(Path::new("/home/proc/cpuinfo")), None);
        assert_eq!(special(Path::new("/")), None);
        assert!(is_environ_file(Path::new("/proc/self/environ")));
        assert!(is_environ_file(Path::new("/proc/77/environ")));
        assert!(!is_environ_file(Path::new("/ws/environ")));
    }
}
