"""Data: the built-in and file datasets (:mod:`.datasets`) and data as batches on a device, held,
cached or streamed (:mod:`.batches`).
"""
