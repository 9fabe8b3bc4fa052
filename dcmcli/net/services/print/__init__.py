"""Print Management SCU (printscu): ``job`` (the requests, on the generic
N-service session), ``image`` (pixels to P-values or RGB for an image box),
``preview`` (the film as a PNG). No typer here."""
