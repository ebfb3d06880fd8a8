"""Training of the MaskGIT tokenizer and transformer (`maskgit-editor train ...`), by job.

    env          the process: device, precision, DDP, log lines, the progress bar, the budget
                 (steps and/or wall-clock minutes), the learning-rate schedule and the optimizer
    data         crop banks for a run (packed .npz or a folder cut on the fly), `train pack`,
                 sample grids and PSNR
    checkpoint   the one training checkpoint format (resumable state, float16 shards, decoder
                 snapshots) and `train export` to the app's weight format
    tokenizer    the VQGAN tokenizer loop (Esser et al. CVPR 2021, as used by MaskGIT)
    transformer  the MaskGIT transformer loop (Chang et al. CVPR 2022)
    decoder_gan  adversarial fine-tuning of a trained decoder (`train decoder`)
    retrain      everything in a row on one GPU: tokenizer, transformer, export, bench/quality
    cli          argparse; the only place that turns errors into exit codes

Library functions raise `TrainingError` (a ValueError); only `cli.main` turns it into an exit
code, so the jobs can be called from tests and from other jobs.
"""
