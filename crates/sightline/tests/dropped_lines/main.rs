//! Log lines that the non-blocking writer must drop are counted, and the count reaches
//! Prometheus as `sightline_logging_dropped_lines_total`.

#[test]
fn dropped_log_lines_are_counted_in_the_exposition() {
    let sightline = sightline::Sightline::builder()
        .service_name("dropped-lines")
        .log_filter("info")
        // Smaller than any line: every line is dropped, whole.
        .log_buffer_bytes(64)
        .build()
        .expect("builds");
    for i in 0..10 {
        tracing::info!(i, "a line that cannot fit in a 64-byte buffer");
    }
    let text = sightline.render_metrics();
    let value = text
        .lines()
        .find(|l| l.starts_with("sightline_logging_dropped_lines_total "))
        .and_then(|l| l.rsplit_once(' '))
        .map(|(_, v)| v.trim().to_owned());
    assert_eq!(value.as_deref(), Some("10"), "exposition:\n{text}");
    sightline.shutdown().expect("shuts down");
}
