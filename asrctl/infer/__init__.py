"""Transcription (`asrctl infer`): the job and its engine contract, the plan from rows to work items,
resumable output, segmentation of long rows, the steps every engine runs, and the engines."""
