"""Service code (layer 4 of the engine): what each DIMSE service means, on
the requestor (``dcmcli.net.association``) and the acceptor
(``dcmcli.net.acceptor``). Nothing here touches a socket.

* ``echo``: Verification SCU (C-ECHO) and the storage-support probe;
* ``store``: Storage SCU (storescu);
* ``writer``: where received objects go (storescp, movescu, getscu);
* ``storage``: Storage SCP (C-STORE into the writer) and storescp's server;
* ``query``: C-FIND SCU (findscu);
* ``retrieve``: C-MOVE and C-GET SCU (movescu, getscu).
"""
