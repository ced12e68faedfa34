"""What a transcription run gives people: plain text, subtitles whose cues are re-timed from word
times to the limits asked, tab-separated times and JSON; one writer per format, shared by every
command that writes transcripts."""
