//! The server's protobuf codec: tonic-prost's, except that a request message
//! that does not decode is INVALID_ARGUMENT with reason MESSAGE_MALFORMED
//! (and ErrorInfo) instead of tonic-prost's bare INTERNAL, which clients are
//! told to retry. Encoding is tonic-prost's own, into a smaller first buffer
//! than tonic's (see `ENCODE_BUFFER_BYTES`).
//!
//! build.rs points the generated servers here (`codec_path`).

use std::marker::PhantomData;

use prost::Message;
use prost::bytes::Buf;
use tonic::Status;
use tonic::codec::{BufferSettings, DecodeBuf};
use tonic_prost::ProstEncoder;

use crate::error::{Error, clip};

/// Most characters of prost's account of a decode error that the status
/// repeats (prost names the message and field path, so it is short anyway).
const DECODE_ERROR_MAX_CHARS: usize = 256;

/// The buffer a response stream encodes its messages into, allocated when
/// the call starts and kept while it lasts: tonic's 8 KiB, times 10,000
/// subscriptions, was 80 MiB of buffers holding a few hundred bytes each.
/// A larger message grows the buffer as it needs; a stream that once sent a
/// burst (a catch-up gathers up to the yield threshold) keeps the larger
/// buffer.
const ENCODE_BUFFER_BYTES: usize = 1024;
/// Encoded bytes a stream gathers before handing them to the connection
/// (tonic's default).
const YIELD_THRESHOLD_BYTES: usize = 32 * 1024;

/// A [`tonic::codec::Codec`] for prost messages; see the module docs.
#[derive(Debug, Clone)]
pub struct Codec<T, U> {
    _pd: PhantomData<(T, U)>,
}

impl<T, U> Default for Codec<T, U> {
    fn default() -> Self {
        Codec { _pd: PhantomData }
    }
}

impl<T, U> tonic::codec::Codec for Codec<T, U>
where
    T: Message + Send + 'static,
    U: Message + Default + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = ProstEncoder<T>;
    type Decoder = Decoder<U>;

    fn encoder(&mut self) -> Self::Encoder {
        ProstEncoder::new(BufferSettings::new(
            ENCODE_BUFFER_BYTES,
            YIELD_THRESHOLD_BYTES,
        ))
    }

    fn decoder(&mut self) -> Self::Decoder {
        Decoder {
            buffer_settings: BufferSettings::default(),
            _pd: PhantomData,
        }
    }
}

/// Decodes `U`, answering a malformed message with MESSAGE_MALFORMED.
#[derive(Debug, Clone)]
pub struct Decoder<U> {
    buffer_settings: BufferSettings,
    _pd: PhantomData<U>,
}

impl<U: Message + Default> tonic::codec::Decoder for Decoder<U> {
    type Item = U;
    type Error = Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<U>, Status> {
        decode_message(buf).map(Some)
    }

    fn buffer_settings(&self) -> BufferSettings {
        self.buffer_settings
    }
}

/// Decodes one request message, or answers MESSAGE_MALFORMED.
pub fn decode_message<U: Message + Default>(buf: impl Buf) -> Result<U, Status> {
    U::decode(buf).map_err(|e| malformed(&e).into())
}

/// The error of a request message prost could not decode.
pub fn malformed(e: &prost::DecodeError) -> Error {
    Error::MessageMalformed(clip(&e.to_string(), DECODE_ERROR_MAX_CHARS).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto as pb;
    use tonic::Code;
    use tonic::codec::Codec as _;
    use tonic_prost::ProstCodec;
    use tonic_types::StatusExt;

    fn assert_malformed(r: Result<pb::GetIncidentRequest, Status>, says: &str) {
        let status = r.expect_err("must not decode");
        assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
        let details = status.get_error_details();
        let info = details.error_info().expect("ErrorInfo");
        assert_eq!(info.reason, "MESSAGE_MALFORMED");
        assert_eq!(info.domain, crate::error::ERROR_DOMAIN);
        assert!(
            status.message().contains(says),
            "{:?} should say {says:?}",
            status.message()
        );
    }

    #[test]
    fn bad_utf8_in_a_string_is_malformed() {
        // id (field 1, length-delimited) = ff fe
        assert_malformed(decode_message(&[0x0a, 0x02, 0xff, 0xfe][..]), "UTF-8");
    }

    #[test]
    fn a_truncated_message_is_malformed() {
        // id announces 10 bytes, 3 follow.
        assert_malformed(decode_message(&[0x0a, 0x0a, b'a', b'b', b'c'][..]), "");
        // A varint cut in the middle.
        assert_malformed(decode_message(&[0x0a, 0x80][..]), "");
    }

    #[test]
    fn a_wrong_wire_type_is_malformed() {
        // id (a string) sent as a varint.
        assert_malformed(decode_message(&[0x08, 0x01][..]), "wire type");
    }

    #[test]
    fn nesting_past_the_recursion_limit_is_malformed() {
        // 200 nested groups of an unknown field 15: prost stops at 100.
        let mut bytes = vec![(15 << 3) | 3; 200];
        bytes.extend(std::iter::repeat_n((15 << 3) | 4, 200));
        assert_malformed(decode_message(&bytes[..]), "recursion limit");
    }

    #[test]
    fn a_good_message_decodes() {
        let m: pb::GetIncidentRequest = decode_message(&[0x0a, 0x02, b'i', b'd'][..]).unwrap();
        assert_eq!(m.id, "id");
    }

    /// The decoder the servers use, fed a gRPC frame as tonic feeds it.
    #[tokio::test]
    async fn the_server_decoder_answers_malformed_frames_with_invalid_argument() {
        // A body must be a String here: split "é" (c3 a9) so the string field
        // holds c3 alone, which is not UTF-8.
        let payload = "\n\u{1}é";
        let mut frame = String::from("\0\0\0\0");
        frame.push(char::from(payload.len() as u8));
        frame.push_str(payload);
        let mut codec =
            Codec::<crate::wire::GetIncidentResponse, pb::GetIncidentRequest>::default();
        let mut stream = tonic::codec::Streaming::new_request(
            codec.decoder(),
            tonic::body::Body::new(frame),
            None,
            None,
        );
        assert_malformed(stream.message().await.map(|m| m.unwrap()), "UTF-8");

        let frame = String::from("\0\0\0\0\u{4}\n\u{2}id");
        let mut stream = tonic::codec::Streaming::new_request(
            codec.decoder(),
            tonic::body::Body::new(frame),
            None,
            None,
        );
        let m = stream.message().await.unwrap().unwrap();
        assert_eq!(m.id, "id");
    }

    #[test]
    fn the_encoder_is_tonic_prosts() {
        fn same<T>(_: T, _: T) {}
        let mut codec = Codec::<pb::GetIncidentRequest, pb::GetIncidentRequest>::default();
        let mut prost = ProstCodec::<pb::GetIncidentRequest, pb::GetIncidentRequest>::default();
        same(codec.encoder(), prost.encoder());
    }
}
