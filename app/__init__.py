"""app: the Streamlit app (``app/Home.py``): Evidence, What-if and Justification pages, thin over
``capacity``."""
