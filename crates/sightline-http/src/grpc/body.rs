//! The request body of the gRPC server, and the message counter both sides use.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::Poll;

use bytes::Buf;
use http_body::Body;
use pin_project_lite::pin_project;

use super::call::RequestCounters;
use crate::core::lifecycle::body_wrapper;

/// Counts gRPC messages in a byte stream: each is a 1-byte flag, a 4-byte big-endian length
/// and that many bytes, split across frames in any way.
#[derive(Default, Clone, Copy, Debug)]
pub(crate) struct MessageCounter {
    pub(crate) count: u64,
    /// Bytes of the current prefix read so far (0 to 4).
    prefix_read: u8,
    length: u32,
    payload_left: u64,
}

impl MessageCounter {
    pub(crate) fn feed(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            if self.payload_left > 0 {
                let skip = bytes
                    .len()
                    .min(usize::try_from(self.payload_left).unwrap_or(usize::MAX));
                self.payload_left -= skip as u64;
                bytes = &bytes[skip..];
                continue;
            }
            let byte = bytes[0];
            bytes = &bytes[1..];
            if self.prefix_read > 0 {
                self.length = self.length << 8 | u32::from(byte);
            }
            self.prefix_read += 1;
            if self.prefix_read == 5 {
                self.count += 1;
                self.payload_left = u64::from(self.length);
                self.prefix_read = 0;
                self.length = 0;
            }
        }
    }

    /// Feeds every chunk of `data` without consuming it.
    ///
    /// hyper's and tonic's frames are one contiguous `Bytes`; a buffer chained from more than
    /// 16 pieces is counted from its first 16.
    pub(crate) fn feed_buf(&mut self, data: &impl Buf) {
        let mut slices = [std::io::IoSlice::new(&[]); 16];
        let filled = data.chunks_vectored(&mut slices);
        for slice in &slices[..filled] {
            self.feed(slice);
        }
    }
}

pin_project! {
    /// Request body of [`GrpcServer`](super::GrpcServer): counts the bytes and messages the
    /// client sends, for the access log and the per-call message counts.
    pub struct RequestBody<B> {
        #[pin]
        inner: B,
        counters: Option<Arc<RequestCounters>>,
        messages: Option<MessageCounter>,
    }
}

impl<B> RequestBody<B> {
    pub(crate) fn new(
        inner: B,
        counters: Option<Arc<RequestCounters>>,
        count_messages: bool,
    ) -> Self {
        Self {
            inner,
            messages: (counters.is_some() && count_messages).then(MessageCounter::default),
            counters,
        }
    }
}

impl<B: std::fmt::Debug> std::fmt::Debug for RequestBody<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestBody")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

body_wrapper!(impl<B: Body> for RequestBody<B>, |this, cx| {
    let polled = this.inner.poll_frame(cx);
    if let (Some(counters), Poll::Ready(Some(Ok(frame)))) = (this.counters.as_ref(), &polled)
        && let Some(data) = frame.data_ref()
    {
        counters
            .bytes
            .fetch_add(data.remaining() as u64, Ordering::Relaxed);
        if let Some(messages) = this.messages.as_mut() {
            let before = messages.count;
            messages.feed_buf(data);
            counters
                .messages
                .fetch_add(messages.count - before, Ordering::Relaxed);
        }
    }
    polled
});

#[cfg(test)]
mod tests {
    use super::MessageCounter;

    fn message(len: u32) -> Vec<u8> {
        let mut m = vec![0u8];
        m.extend_from_slice(&len.to_be_bytes());
        m.extend(std::iter::repeat_n(7u8, len as usize));
        m
    }

    #[test]
    fn counts_messages_split_anywhere() {
        let stream: Vec<u8> = [0, 3, 300, 0, 70_000]
            .into_iter()
            .flat_map(message)
            .collect();
        for chunk in [1, 2, 3, 5, 7, 64, 1000, stream.len()] {
            let mut counter = MessageCounter::default();
            for piece in stream.chunks(chunk) {
                counter.feed(piece);
            }
            assert_eq!(counter.count, 5, "chunk {chunk}");
        }
    }
}
