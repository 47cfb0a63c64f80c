//! Every kind of bad input gets a typed error naming the file, and never a
//! panic or a loss of the data that was good.

mod common;

use common::{Stamped, check, test_dir};
use statemesh_shm::{OpenError, ReadError, Reader, ReaderOptions, Writer, WriterOptions};
use std::ffi::OsStr;
use std::fs;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::time::Duration;

fn writer(dir: &Path, name: &str) -> Writer<Stamped> {
    Writer::with_options(name, WriterOptions::new().dir(dir)).unwrap()
}

fn reader(dir: &Path, name: &str) -> Result<Reader<Stamped>, OpenError> {
    Reader::with_options(name, ReaderOptions::new().dir(dir))
}

#[test]
fn a_missing_region_is_not_found() {
    let dir = test_dir();
    let err = reader(dir.path(), "nothing").unwrap_err();
    assert!(
        matches!(&err, OpenError::NotFound { path } if path.ends_with("nothing")),
        "{err}"
    );
    let err = Reader::<Stamped>::open_wait(
        "nothing",
        ReaderOptions::new().dir(dir.path()),
        Duration::from_millis(30),
    )
    .unwrap_err();
    assert!(matches!(err, OpenError::Timeout { .. }), "{err}");
}

#[test]
fn reading_before_the_first_write_is_an_error_or_a_wait() {
    let dir = test_dir();
    let mut w = writer(dir.path(), "early");
    let mut r = reader(dir.path(), "early").unwrap();
    let err = r.read().unwrap_err();
    assert!(matches!(err, ReadError::NothingPublished { .. }), "{err}");
    assert!(err.to_string().contains("early"), "{err}");
    assert_eq!(r.version(), None);
    assert_eq!(r.wait_for_change(Duration::from_millis(10)).unwrap(), None);
    let waiter = std::thread::spawn(move || {
        let v = r.wait_for_change(Duration::from_secs(30)).unwrap();
        (v, check(&r.read().unwrap()).unwrap())
    });
    std::thread::sleep(Duration::from_millis(20));
    w.write(&Stamped::new(1, 16)).unwrap();
    let (v, seq) = waiter.join().unwrap();
    assert_eq!(v.unwrap().get(), 1);
    assert_eq!(seq, 1);
}

#[test]
fn a_file_that_is_not_a_region_has_bad_magic() {
    let dir = test_dir();
    fs::write(dir.path().join("other"), vec![7u8; 4096]).unwrap();
    let err = reader(dir.path(), "other").unwrap_err();
    assert!(
        matches!(&err, OpenError::BadMagic { path } if path.ends_with("other")),
        "{err}"
    );
    let err =
        Writer::<Stamped>::with_options("other", WriterOptions::new().dir(dir.path())).unwrap_err();
    assert!(matches!(err, OpenError::BadMagic { .. }), "{err}");
    // The foreign file was not touched.
    assert_eq!(fs::read(dir.path().join("other")).unwrap(), vec![7u8; 4096]);
}

#[test]
fn an_incompatible_layout_is_refused_by_name() {
    let dir = test_dir();
    drop(writer(dir.path(), "old"));
    let path = dir.path().join("old");
    let file = fs::OpenOptions::new().write(true).open(&path).unwrap();
    file.write_all_at(&99u32.to_ne_bytes(), 8).unwrap();
    let err = reader(dir.path(), "old").unwrap_err();
    assert!(
        matches!(&err, OpenError::IncompatibleLayout { found: 99, supported: 1, path } if *path == path_of(&dir, "old")),
        "{err}"
    );
    let err =
        Writer::<Stamped>::with_options("old", WriterOptions::new().dir(dir.path())).unwrap_err();
    assert!(matches!(err, OpenError::IncompatibleLayout { .. }), "{err}");
}

fn path_of(dir: &tempfile::TempDir, name: &str) -> std::path::PathBuf {
    dir.path().join(name)
}

#[test]
fn a_corrupt_header_is_detected() {
    let dir = test_dir();
    drop(writer(dir.path(), "flip"));
    let file = fs::OpenOptions::new()
        .write(true)
        .open(dir.path().join("flip"))
        .unwrap();
    // Slot count: a flipped bit fails the header checksum.
    file.write_all_at(&[0xFF], 17).unwrap();
    let err = reader(dir.path(), "flip").unwrap_err();
    assert!(matches!(err, OpenError::CorruptHeader { .. }), "{err}");
    assert!(err.to_string().contains("checksum"), "{err}");
}

#[test]
fn a_truncated_control_file_is_detected() {
    let dir = test_dir();
    drop(writer(dir.path(), "short"));
    let path = dir.path().join("short");
    let whole = fs::read(&path).unwrap();
    for len in [0u64, 10, 63, 64, 4000] {
        fs::write(&path, &whole[..len as usize]).unwrap();
        let err = reader(dir.path(), "short").unwrap_err();
        assert!(
            matches!(&err, OpenError::Truncated { len: l, .. } if *l == len),
            "len {len}: {err}"
        );
    }
}

#[test]
fn a_truncated_buffer_file_is_detected_and_good_data_survives() {
    let dir = test_dir();
    let mut w = writer(dir.path(), "cut");
    w.write(&Stamped::new(1, 2000)).unwrap();
    // Buffer 0 holds version 1; cut it in half.
    let buf = dir.path().join("cut.buf0");
    fs::OpenOptions::new()
        .write(true)
        .open(&buf)
        .unwrap()
        .set_len(1000)
        .unwrap();
    let mut r = reader(dir.path(), "cut").unwrap();
    let err = r.read().unwrap_err();
    assert!(
        matches!(&err, ReadError::Truncated { path, .. } if *path == buf),
        "{err}"
    );
    // The next publish goes to another buffer and reads fine.
    w.write(&Stamped::new(2, 2000)).unwrap();
    assert_eq!(check(&r.read().unwrap()).unwrap(), 2);
}

#[test]
fn a_checksum_mismatch_is_reported_when_asked_for() {
    let dir = test_dir();
    let mut w =
        Writer::<Stamped>::with_options("crc", WriterOptions::new().dir(dir.path()).checksum(true))
            .unwrap();
    w.write(&Stamped::new(1, 64)).unwrap();
    let buf = dir.path().join("crc.buf0");
    let file = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&buf)
        .unwrap();
    let mut byte = [0u8; 1];
    file.read_exact_at(&mut byte, 64 + 16).unwrap();
    file.write_all_at(&[byte[0] ^ 1], 64 + 16).unwrap();
    let mut verified = Reader::<Stamped>::with_options(
        "crc",
        ReaderOptions::new().dir(dir.path()).verify_checksum(true),
    )
    .unwrap();
    let err = verified.read_raw().unwrap_err();
    assert!(
        matches!(&err, ReadError::ChecksumMismatch { path, version, .. } if *path == buf && version.get() == 1),
        "{err}"
    );
    // Without verification the bytes are served (the check is optional).
    let mut plain = reader(dir.path(), "crc").unwrap();
    assert!(plain.read_raw().is_ok());
    // A new version is intact again.
    w.write(&Stamped::new(2, 64)).unwrap();
    assert_eq!(check(&verified.read().unwrap()).unwrap(), 2);
}

#[test]
fn bytes_that_are_not_the_type_are_a_validation_error() {
    let dir = test_dir();
    let mut w = Writer::<[u8]>::with_options("raw", WriterOptions::new().dir(dir.path())).unwrap();
    // A Stamped archive whose vector claims to be far longer than the buffer.
    w.write_raw(&[0xFFu8; 48]).unwrap();
    let mut r = reader(dir.path(), "raw").unwrap();
    let err = r.read().unwrap_err();
    assert!(matches!(err, ReadError::Invalid { .. }), "{err}");
    // Raw reads are always accepted.
    assert_eq!(&*r.read_raw().unwrap(), &[0xFFu8; 48][..]);
    // An empty snapshot is also just bytes.
    w.write_raw(&[]).unwrap();
    assert!(r.read_raw().unwrap().is_empty());
    assert!(matches!(r.read(), Err(ReadError::Invalid { .. })));
}

#[test]
fn a_buffer_file_of_another_region_is_not_trusted() {
    let dir = test_dir();
    let other = test_dir();
    writer(other.path(), "same")
        .write(&Stamped::new(1, 8))
        .unwrap();
    let mut w = writer(dir.path(), "same");
    w.write(&Stamped::new(1, 8)).unwrap();
    fs::copy(other.path().join("same.buf0"), dir.path().join("same.buf0")).unwrap();
    let err = reader(dir.path(), "same").unwrap().read_raw().unwrap_err();
    assert!(matches!(err, ReadError::Corrupt { .. }), "{err}");
}

#[test]
fn invalid_names_and_options_are_refused() {
    let dir = test_dir();
    for name in ["", ".", "..", "a/b"] {
        let err = Writer::<Stamped>::with_options(name, WriterOptions::new().dir(dir.path()))
            .unwrap_err();
        assert!(
            matches!(err, OpenError::InvalidName { .. }),
            "{name:?}: {err}"
        );
    }
    for opts in [
        WriterOptions::new().slots(0),
        WriterOptions::new().max_buffers(1),
        WriterOptions::new().max_buffers(257),
    ] {
        let err = Writer::<Stamped>::with_options("x", opts.dir(dir.path())).unwrap_err();
        assert!(matches!(err, OpenError::InvalidOption(_)), "{err}");
    }
}

#[test]
fn non_utf8_names_work() {
    use std::os::unix::ffi::OsStrExt;
    let dir = test_dir();
    let name = OsStr::from_bytes(b"caf\xe9-\xff");
    let mut w =
        Writer::<Stamped>::with_options(name, WriterOptions::new().dir(dir.path())).unwrap();
    w.write(&Stamped::new(1, 8)).unwrap();
    let mut r =
        Reader::<Stamped>::with_options(name, ReaderOptions::new().dir(dir.path())).unwrap();
    assert_eq!(check(&r.read().unwrap()).unwrap(), 1);
    assert!(dir.path().join(name).exists());
}

#[test]
fn all_slots_in_use_is_an_error_until_one_is_freed() {
    let dir = test_dir();
    let _w = Writer::<Stamped>::with_options("few", WriterOptions::new().dir(dir.path()).slots(2))
        .unwrap();
    let a = reader(dir.path(), "few").unwrap();
    let _b = reader(dir.path(), "few").unwrap();
    let err = reader(dir.path(), "few").unwrap_err();
    assert!(
        matches!(err, OpenError::NoFreeSlot { slots: 2, .. }),
        "{err}"
    );
    drop(a);
    reader(dir.path(), "few").unwrap();
}

#[test]
fn a_full_file_system_is_an_io_error_and_the_last_snapshot_stays() {
    // A tiny tmpfs would need mount privileges; a file size limit gives the
    // same refusal (EFBIG instead of ENOSPC) on any file system. The helper
    // ignores SIGXFSZ (inherited through exec) so the call fails instead.
    // It checks the error, the version and the data kept, and that small
    // values still publish (see `full_writer` in `src/bin/helper.rs`).
    let dir = test_dir();
    let limited = std::process::Command::new("sh")
        .arg("-c")
        .arg("trap '' XFSZ; ulimit -f 256 && exec \"$0\" full-writer \"$1\" full")
        .arg(common::HELPER)
        .arg(dir.path())
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&limited.stdout);
    let err = String::from_utf8_lossy(&limited.stderr);
    assert!(limited.status.success(), "{}: {out}{err}", limited.status);
    let line = out.lines().find(|l| l.starts_with("@io-error "));
    let message = line.unwrap_or_else(|| panic!("no @io-error line in {out:?}"));
    assert!(message.contains("full.buf"), "{message}");
}
