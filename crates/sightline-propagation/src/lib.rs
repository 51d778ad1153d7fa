//! W3C Trace Context, W3C Baggage and B3 codecs.
