"""app: the Streamlit what-if calculator (thin pages over ``capacity``)."""
