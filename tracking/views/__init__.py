"""The dashboard's pages of experiment tracking: experiments, their sharing, runs."""
