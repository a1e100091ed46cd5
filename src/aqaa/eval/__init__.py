"""Evaluation from the speech itself: a frozen nine-dimension spoken benchmark after StepEval-Audio-360.

    bench       build and open the benchmark (held-out phrasings and voices; manifest hash)
    keys        what a right answer to each turn must contain
    match       finding expected words in an ASR transcript (pronunciation-tolerant)
    prosody     rate, pitch, spread, level, sung melody, measured on audio
    styles      hearing the asked speaking style or emotion, calibrated on the corpus's own styles
    score       one answer's factuality, relevance, skill and chat score
    run         asking a system every turn (cached, resumable) and scoring the run
    report      Markdown tables, radar charts, comparisons
    reference   ground-truth and wrong-answer systems (ceiling and floor)
    cascade     the ASR → text model → flite baseline
    llm_judge   an optional OpenAI-compatible LLM grader
    commands    `aqaa eval build-bench | run | compare | reference-system | cascade-system`

The ablation runner over output layouts (the paper's Table 1) lives with the LM recipes
(`aqaa.recipes.ablate`): it trains each layout and scores it here with `aqaa.eval.run.run_benchmark`.
"""
