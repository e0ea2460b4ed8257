"""The reader's training side: data, fine-tuning, calibration and measurement. Nothing here is on the
query path (`qa.answer` never imports it).

    python -m qa.training.train       # fine-tune a reader (make train-reader)
    python -m qa.training.calibrate   # fit how its findings become an answer and a confidence
    python -m qa.training.eval FILE   # measure the whole assistant on a question file (make eval)
"""
