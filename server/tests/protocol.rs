//! The parser against arbitrary byte streams split at arbitrary points: it never panics, and
//! parses the same requests whatever the split.

use bytes::BytesMut;
use proptest::prelude::*;
use shardlru_server::protocol::{Parser, Request};

/// The item size limit of these parsers: small, so that the streams hit it.
const MAX_ITEM: usize = 64;

/// Fragments that make streams likely to contain valid requests, broken ones, and junk.
fn fragment() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just(b"get a b\r\n".to_vec()),
        Just(b"gets a\r\n".to_vec()),
        (0..80usize, any::<u8>()).prop_map(|(len, byte)| {
            let mut request = format!("set k 1 0 {len}\r\n").into_bytes();
            request.extend(std::iter::repeat_n(byte, len));
            request.extend_from_slice(b"\r\n");
            request
        }),
        Just(b"add k 0 0 2 noreply\r\nab\r\n".to_vec()),
        Just(b"replace k 0 5 2\r\nab\r\n".to_vec()),
        Just(b"set k 0 0 3\r\nabcd\r\n".to_vec()),
        Just(b"set k x 0 2\r\n".to_vec()),
        Just(b"delete k\r\ntouch k 0\r\nflush_all\r\nversion\r\nstats\r\n".to_vec()),
        Just(b"\r\n".to_vec()),
        Just(b"quit\r\n".to_vec()),
        Just(b" ".to_vec()),
        Just(b"\n".to_vec()),
        prop::collection::vec(any::<u8>(), 0..40),
        (0..3000usize).prop_map(|len| vec![b'x'; len]),
    ]
}

/// A stream of fragments and the points to cut it at.
fn stream_and_cuts() -> impl Strategy<Value = (Vec<u8>, Vec<usize>)> {
    prop::collection::vec(fragment(), 0..30).prop_flat_map(|fragments| {
        let stream = fragments.concat();
        let len = stream.len();
        (Just(stream), prop::collection::vec(0..=len, 0..20))
    })
}

/// Feeds `chunks` one after another, parsing all it can after each.
fn parse_chunks<'a>(chunks: impl IntoIterator<Item = &'a [u8]>) -> Vec<Request> {
    let mut parser = Parser::new(MAX_ITEM);
    let mut buf = BytesMut::new();
    let mut requests = Vec::new();
    for chunk in chunks {
        buf.extend_from_slice(chunk);
        while let Some(request) = parser.parse(&mut buf) {
            requests.push(request);
        }
    }
    requests
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn splits_do_not_change_the_requests((stream, mut cuts) in stream_and_cuts()) {
        let whole = parse_chunks([&stream[..]]);
        cuts.sort_unstable();
        let mut chunks = Vec::new();
        let mut start = 0;
        for cut in cuts {
            chunks.push(&stream[start..cut]);
            start = cut;
        }
        chunks.push(&stream[start..]);
        prop_assert_eq!(parse_chunks(chunks), whole.clone());
        // Byte by byte too (quadratic in a long line: short streams only).
        if stream.len() <= 8192 {
            prop_assert_eq!(parse_chunks(stream.chunks(1)), whole);
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(stream in prop::collection::vec(any::<u8>(), 0..4096)) {
        parse_chunks([&stream[..]]);
    }
}
