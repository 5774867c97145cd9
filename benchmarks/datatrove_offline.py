"""DataTrove 0.10.1 without the network, as every peer benchmark here runs it (in the peer interpreter).

NLTK's punkt data cannot be downloaded, so sentences are split by an untrained Punkt model; tldextract
reads its bundled suffix list instead of fetching one. Standard-library imports only at the top: the
winnow side imports the scripts that import this.
"""

from __future__ import annotations


def untrained_sentence_splitter():
    """Points NLTK's `sent_tokenize` and DataTrove's NLTK word tokenizer at an untrained Punkt model."""
    import nltk.tokenize
    import nltk.tokenize.punkt as punkt
    from datatrove.utils import word_tokenizers

    splitter = punkt.PunktSentenceTokenizer()
    nltk.tokenize.sent_tokenize = lambda text, language="english": splitter.tokenize(text)
    word_tokenizers.NLTKTokenizer.tokenizer = property(lambda self: splitter)
    return splitter


def offline_url_filter(cls=None):
    """A DataTrove URLFilter (or subclass `cls`) whose domain parser uses the bundled suffix list."""
    from datatrove.pipeline.filters import URLFilter
    from tldextract import TLDExtract

    url_filter = (cls or URLFilter)()
    url_filter.tldextractor = TLDExtract(suffix_list_urls=(), cache_dir=None)
    return url_filter
