"""Training RVC v1/v2 voices (`python -m svc_core train --arch rvc`), in RVC WebUI's experiment layout.

    from svc_core.rvc.train import RvcTrainSettings, prepare_experiment, RvcTrainer, train_rvc_index
    prepare_experiment(settings)            # clips -> 0_gt_wavs, 1_16k_wavs, 2a_f0, 2b-f0nsf, 3_feature768
    RvcTrainer(settings).fit()              # G_*.pth / D_*.pth, then the small model <name>.pth
    train_rvc_index(exp_dir, name, "v2")    # added_IVF*_Flat_nprobe_1_<name>_v2.index

Modules: layout (folder and file names), settings, slicing (RVC's 3.7 s training pieces), extract (f0 + content
features per piece), prepare (the whole experiment folder), dataset (filelist -> batches), discriminator (RVC's
periods), checkpoints (G_/D_ files, resume, small model), trainer (the loop), index (faiss index), cli.
Nothing is imported here, so `import svc_core.rvc.train` is cheap.
"""
