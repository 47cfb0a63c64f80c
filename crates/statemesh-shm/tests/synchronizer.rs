//! The scenario of mmap-sync's own `test_synchronizer`, written against this
//! crate's API: read before any write fails, each write is seen by the next
//! read, a repeated read reports no change, and two writes with no read in
//! between are read as the second.

mod common;

use statemesh_shm::{OpenError, ReadError, Reader, ReaderOptions, Writer, WriterOptions};
use std::collections::HashMap;

#[derive(rkyv::Archive, rkyv::Serialize, Debug, PartialEq)]
struct MockEntity {
    version: u32,
    map: HashMap<u64, Vec<f32>>,
}

/// A small deterministic generator (SplitMix64), so runs are reproducible.
struct Generator(u64);

impl Generator {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn entity(&mut self, n: usize) -> MockEntity {
        let version = self.next() as u32;
        let map = (0..n)
            .map(|_| {
                let key = self.next();
                let len = (self.next() % 20) as usize;
                let vals = (0..len)
                    .map(|_| (self.next() % 10_000) as f32 / 100.0)
                    .collect();
                (key, vals)
            })
            .collect();
        MockEntity { version, map }
    }
}

fn fetch_and_assert(
    reader: &mut Reader<MockEntity>,
    expected: &MockEntity,
    expected_changed: bool,
) {
    let actual = reader.read().unwrap();
    assert_eq!(actual.version, expected.version);
    assert_eq!(actual.map.len(), expected.map.len());
    for (key, vals) in &expected.map {
        let got = actual
            .map
            .get(&rkyv::rend::u64_le::from_native(*key))
            .expect("key present");
        let got: Vec<f32> = got.iter().map(|v| v.to_native()).collect();
        assert_eq!(&got, vals);
    }
    assert_eq!(actual.is_changed(), expected_changed);
}

#[test]
fn test_synchronizer() {
    let dir = common::test_dir();
    let (wopts, ropts) = (
        WriterOptions::new().dir(dir.path()),
        ReaderOptions::new().dir(dir.path()),
    );
    let control = dir.path().join("synchro_test");
    let data_0 = dir.path().join("synchro_test.buf0");
    let data_1 = dir.path().join("synchro_test.buf1");

    // Reading fails while no writer has created the region...
    let err = Reader::<MockEntity>::with_options("synchro_test", ropts.clone()).unwrap_err();
    assert!(matches!(err, OpenError::NotFound { .. }), "{err}");
    assert!(!control.exists());

    let mut writer = Writer::<MockEntity>::with_options("synchro_test", wopts).unwrap();
    let mut reader = Reader::<MockEntity>::with_options("synchro_test", ropts).unwrap();
    // ...and while it has published nothing.
    assert!(matches!(
        reader.read(),
        Err(ReadError::NothingPublished { .. })
    ));

    let mut generator = Generator(3);

    let entity = generator.entity(100);
    let published = writer.write(&entity).unwrap();
    assert!(published.len > 0);
    assert_eq!(published.version.get(), 1);
    assert!(control.exists());
    assert!(data_0.exists());
    assert!(!data_1.exists());
    assert_eq!(reader.version(), Some(published.version));

    // The first read switches to the new data, the second does not.
    fetch_and_assert(&mut reader, &entity, true);
    fetch_and_assert(&mut reader, &entity, false);

    let entity = generator.entity(200);
    let published = writer.write(&entity).unwrap();
    assert!(published.len > 0);
    assert!(data_0.exists());
    assert!(data_1.exists());
    assert_eq!(reader.version().unwrap().get(), 2);
    fetch_and_assert(&mut reader, &entity, true);

    // Two writes without a read in between: the read sees the second.
    let entity = generator.entity(100);
    writer.write(&entity).unwrap();
    assert_eq!(reader.version().unwrap().get(), 3);
    let entity = generator.entity(200);
    writer.write(&entity).unwrap();
    assert_eq!(reader.version().unwrap().get(), 4);
    fetch_and_assert(&mut reader, &entity, true);
}

#[test]
fn single_writer_lock_prevents_multiple_writers() {
    let dir = common::test_dir();
    let opts = WriterOptions::new().dir(dir.path());
    let mut generator = Generator(3);
    let entity = generator.entity(100);
    let mut writer1 = Writer::<MockEntity>::with_options("single_writer", opts.clone()).unwrap();
    writer1.write(&entity).unwrap();
    assert!(matches!(
        Writer::<MockEntity>::with_options("single_writer", opts),
        Err(OpenError::WriterExists { .. })
    ));
}
