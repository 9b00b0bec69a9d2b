print("registryd: not yet")
