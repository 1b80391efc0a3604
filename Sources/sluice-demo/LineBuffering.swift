@preconcurrency import Glibc

/// Makes stdout line-buffered (it is block-buffered when it is not a terminal), so a pipe or a
/// log file shows the demo's progress as it happens.
func setLineBuffered() {
    setvbuf(stdout, nil, _IOLBF, 0)
}
