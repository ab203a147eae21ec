"""Progress bars on stderr: tqdm's bar on a terminal; written to a file (nohup, a batch job's log), a line a
minute, each a line of its own, where a carriage-returned bar at every update would make 9,000 training steps
one line of 800 kB."""

import sys


def progress(iterable=None, **kwargs):
    from tqdm import tqdm

    if sys.stderr.isatty():
        return tqdm(iterable, file=sys.stderr, **kwargs)
    # miniters=1: the time is read every step, so a line is due each minute, and tqdm's monitor thread (which
    # redraws a bar whose count it has not yet been told) stays out.
    return tqdm(iterable, file=_Lines(), mininterval=60, miniters=1, **kwargs)


class _Lines:
    """A stream for tqdm that writes each refresh of the bar to stderr as a line of its own."""

    def write(self, text):
        text = text.replace("\r", "").rstrip()
        if text:
            sys.stderr.write(text + "\n")

    def flush(self):
        sys.stderr.flush()
