print("registryctl: not yet")
