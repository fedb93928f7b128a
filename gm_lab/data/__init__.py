"""Data tools: where each part of the data comes from (`info`), fetching a part (`download`,
`locations`), and building the embedded default that ships in the package (`pack`).

These sit above the benchmark and image readers they use; nothing below imports them.
"""
